"""geometry_msgs / nav_msgs messages from 4x4 homogeneous transforms.

``T_parent_child`` (4x4, float) maps points from the child frame to the parent frame; it is
published as a pose of the child in the parent frame (PoseStamped.header.frame_id = parent,
TransformStamped.child_frame_id = child, REP 105 style ``odom -> camera``).
Quaternions are (x, y, z, w) with w >= 0.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from geometry_msgs.msg import Pose, PoseStamped, Quaternion, TransformStamped
from nav_msgs.msg import Odometry, Path
from std_msgs.msg import Header

from .errors import MessageConversionError


def rotation_to_quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """3x3 rotation -> unit quaternion (x, y, z, w), w >= 0 (Shepperd's best-conditioned branch)."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[0, 0], R[1, 1], R[2, 2]
    trace = m00 + m11 + m22
    candidates = np.array([trace, m00, m11, m22])
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * np.sqrt(max(1.0 + trace, 1e-300))
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif k == 1:
        s = 2.0 * np.sqrt(max(1.0 + m00 - m11 - m22, 1e-300))
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(max(1.0 - m00 + m11 - m22, 1e-300))
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(max(1.0 - m00 - m11 + m22, 1e-300))
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


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
