"""geometry_msgs / nav_msgs messages from 4x4 homogeneous transforms.

``T_parent_child`` (4x4, float) maps points from the child frame to the parent frame; it is
published as a pose of the child in the parent frame (PoseStamped.header.frame_id = parent,
TransformStamped.child_frame_id = child, REP 105 style ``odom -> camera``).
Quaternions are (x, y, z, w) with w >= 0. Stamps: :func:`stamp_to_ns` / :func:`ns_to_stamp` are the one
builtin_interfaces/Time <-> integer nanoseconds conversion.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, Quaternion, Transform, TransformStamped
from nav_msgs.msg import Odometry, Path
from std_msgs.msg import Header

from ..geometry.transforms import quaternion_xyzw_to_rotation, rotation_to_quaternion_xyzw
from .errors import MessageConversionError


def _check_transform(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise MessageConversionError(f"transform must be 4x4, got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise MessageConversionError("transform contains NaN/Inf")
    return T


def _quaternion(T: np.ndarray) -> Quaternion:
    x, y, z, w = rotation_to_quaternion_xyzw(T[:3, :3])
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def make_header(stamp, frame_id: str) -> Header:
    return Header(stamp=stamp, frame_id=frame_id)


def matrix_to_pose(T: np.ndarray) -> Pose:
    T = _check_transform(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    pose.orientation = _quaternion(T)
    return pose


def pose_stamped(T_parent_child: np.ndarray, stamp, parent_frame: str) -> PoseStamped:
    return PoseStamped(header=make_header(stamp, parent_frame), pose=matrix_to_pose(T_parent_child))


def transform_stamped(T_parent_child: np.ndarray, stamp, parent_frame: str, child_frame: str) -> TransformStamped:
    T = _check_transform(T_parent_child)
    msg = TransformStamped(header=make_header(stamp, parent_frame), child_frame_id=child_frame)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in T[:3, 3])
    msg.transform.rotation = _quaternion(T)
    return msg


def transform_to_matrix(transform: Transform) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4 float64 ``T_parent_child`` (the inverse of ``transform_stamped``).

    The quaternion is normalised; like tf2, one whose squared norm is more than 0.01 away from 1 (or
    any NaN/Inf) is rejected with ``MessageConversionError``.
    """
    t, r = transform.translation, transform.rotation
    return _matrix(np.array([t.x, t.y, t.z], dtype=np.float64), np.array([r.x, r.y, r.z, r.w], dtype=np.float64),
                   "transform")


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """geometry_msgs/Pose -> 4x4 float64 (the inverse of ``matrix_to_pose``; checked as ``transform_to_matrix``)."""
    p, r = pose.position, pose.orientation
    return _matrix(np.array([p.x, p.y, p.z], dtype=np.float64), np.array([r.x, r.y, r.z, r.w], dtype=np.float64),
                   "pose")


def _matrix(xyz: np.ndarray, q: np.ndarray, what: str) -> np.ndarray:
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(xyz))):
        raise MessageConversionError(f"{what} contains NaN/Inf (translation {xyz.tolist()}, rotation {q.tolist()})")
    norm2 = float(q @ q)
    if abs(norm2 - 1.0) > 0.01:
        raise MessageConversionError(f"{what} rotation is not a unit quaternion (x, y, z, w) = {q.tolist()} "
                                     f"(squared norm {norm2:.6g})")
    T = np.eye(4)
    T[:3, :3] = quaternion_xyzw_to_rotation(q)
    T[:3, 3] = xyz
    return T


_NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (the inverse of :func:`ns_to_stamp`)."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time (``sec = ns // 1e9``, ``0 <= nanosec < 1e9``, exact)."""
    sec, nanosec = divmod(int(ns), _NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def odometry(T_parent_child: np.ndarray, stamp, parent_frame: str, child_frame: str,
             pose_covariance: np.ndarray | None = None) -> Odometry:
    """Odometry with the pose of ``child_frame`` in ``parent_frame``; twist left zero (unknown).

    Without a covariance, the pose covariance diagonal is -1 on the first element (REP: unknown).
    """
    msg = Odometry(header=make_header(stamp, parent_frame), child_frame_id=child_frame)
    msg.pose.pose = matrix_to_pose(T_parent_child)
    if pose_covariance is None:
        cov = np.zeros(36)
        cov[0] = -1.0
    else:
        cov = np.asarray(pose_covariance, dtype=np.float64).reshape(36)
    msg.pose.covariance = cov.tolist()
    return msg


class BoundedPath:
    """A nav_msgs/Path that keeps at most ``max_length`` most recent poses."""

    def __init__(self, frame_id: str, max_length: int = 1000):
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.frame_id = frame_id
        self._poses: deque[PoseStamped] = deque(maxlen=int(max_length))

    def __len__(self) -> int:
        return len(self._poses)

    def append(self, pose: PoseStamped) -> None:
        self._poses.append(pose)

    def clear(self) -> None:
        self._poses.clear()

    def message(self, stamp) -> Path:
        return Path(header=make_header(stamp, self.frame_id), poses=list(self._poses))
