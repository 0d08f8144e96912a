"""Pose outputs of the node (pose, odometry, path, /tf) for a robot (REP 105) or a bare camera.

Used by ``da3_node``: the worker calls :meth:`PoseOutputs.inputs` before a frame (TF reads, may wait)
and :meth:`PoseOutputs.messages` after it, then publishes what it returns. The ROS-free parts are
``RobotFrames`` (which edges) and ``BaseOdometry`` (poses, twist, covariance); this class keeps the
trajectory state and turns them into messages (only those asked for are built; the state is kept
whatever is asked, so switching an output on shows the whole path).

Publishing convention, per processed frame:

* **tracked** (tracking / reinitialised): ``pose`` (PoseStamped of the body in ``odom_frame``), ``odometry``
  (child ``base_frame`` or the camera frame; twist in the child frame; covariances from the model of
  ``tracking.base_trajectory``), ``path`` (the kept history re-expressed at the current scale) and the TF
  edge of ``RobotFrames.published_edge``;
* **scale unknown yet** (a scale source is configured but has no estimate): only ``odometry`` is
  published, with position / linear-velocity variances ``1e6`` (an EKF ignores them and can still fuse the
  orientation); no pose, path or TF, which would be in an arbitrary unit;
* **lost** (the window was rejected) or **initialising**: nothing on pose / odometry / path / TF (as
  isaac_ros_visual_slam); /diagnostics says ``lost`` (WARN). Depth and points are still published;
* after a reset (``~/reset``, time jump back) the path restarts and the first twist is unknown.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Tuple

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from std_msgs.msg import Header

from ..ros_io import odometry, pose_stamped, stamp_to_ns, transform_stamped
from ..tracking.base_trajectory import BaseOdometry, BaseOdometrySample
from .robot_frames import RobotFrames, RobotFrameSettings

__all__ = ["PoseOutputs", "POSE_OUTPUTS"]

#: the names of the messages :meth:`PoseOutputs.messages` can build
POSE_OUTPUTS = ("pose", "odometry", "path", "tf")


def _twist_into(msg, sample: BaseOdometrySample) -> None:
    t = msg.twist.twist
    t.linear.x, t.linear.y, t.linear.z = (float(v) for v in sample.linear)
    t.angular.x, t.angular.y, t.angular.z = (float(v) for v in sample.angular)
    msg.twist.covariance = np.asarray(sample.twist_covariance, np.float64).reshape(36).tolist()


class PoseOutputs:
    """See the module docstring. ``lookup_factory()`` creates the TF lookup (called once, when needed)."""

    def __init__(self, settings: Mapping[str, Any], lookup_factory: Callable[[], Any], scale_expected: bool):
        self.frame_settings = RobotFrameSettings.from_settings(settings)
        needs_tf = bool(self.frame_settings.base_frame) or self.frame_settings.uses_odometry
        self._lookup = lookup_factory() if needs_tf else None
        self.frames = RobotFrames(self.frame_settings, self._lookup)
        self.scale_expected = bool(scale_expected)
        self.path_max_length = int(settings.get("path_max_length", 1000))
        self._odometry: Optional[BaseOdometry] = None
        self._camera_frame = ""
        self._stamps: Deque[Any] = deque(maxlen=self.path_max_length)
        self.published_poses = 0
        self.odometry_only = 0
        self.last_sample: Optional[BaseOdometrySample] = None

    def __len__(self) -> int:
        """Poses kept for the path."""
        return len(self._stamps)

    @property
    def lookup(self):
        return self._lookup

    def destroy(self) -> None:
        if self._lookup is not None:
            self._lookup.destroy()
            self._lookup = None

    # -- worker, before the frame ---------------------------------------------------------------
    def inputs(self, camera_frame: str, stamp_ns: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(T_base_cam, T_odometry_base or None) for this image. Raises ``RobotFrameError`` when the
        camera mount is not in TF (the frame must be dropped: nothing can be placed on the robot)."""
        T_base_cam = self.frames.T_base_cam(camera_frame)
        if self._odometry is None or camera_frame != self._camera_frame:
            self._odometry = BaseOdometry(T_base_cam, scale_expected=self.scale_expected,
                                          max_history=self.path_max_length)
            self._stamps.clear()
            self._camera_frame = camera_frame
        return T_base_cam, self.frames.odometry_pose(stamp_ns)

    def take_tf_warnings(self) -> list[str]:
        """Frames whose TF parent changed since the last call (two nodes publishing a parent of the same frame,
        e.g. a wheel odometry's ``wheel_odom -> base_link`` next to this node's ``odom -> base_link``)."""
        take = getattr(self._lookup, "take_reparent_events", None)
        if take is None:
            return []
        return [f"TF: {event.describe()} -- two publishers claim this frame's parent; see README 'On your robot' "
                "(odometry_frame / publish_tf)" for event in take()]

    def reset(self) -> None:
        """A new trajectory: the path restarts, the next twist is unknown."""
        if self._odometry is not None:
            self._odometry.reset()
        self._stamps.clear()

    # -- worker, after the frame ----------------------------------------------------------------
    def messages(self, result, stamp, camera_frame: str, odom_frame: str, *, pose: bool = True,
                 odometry_msg: bool = True, path_msg: bool = True, tf: bool = True) -> Dict[str, Any]:
        """{'pose', 'odometry', 'path', 'tf'} for ``result`` (a ``WindowOutcome``) stamped ``stamp``: those
        asked for and due under the publishing convention (module docstring). ``tf`` is a TransformStamped."""
        if self._odometry is None:   # inputs() was not called (no robot settings): the camera is the body
            self.inputs(camera_frame, stamp_to_ns(stamp))
        if result.reset:
            self.reset()
        if result.reinitialised:
            self._odometry.break_twist()
        self.last_sample = None
        if result.T_odom_cam is None:
            return {}
        est = getattr(result, "scale_estimate", None)
        s = getattr(result, "metres_per_unit", None)
        sample = self._odometry.update(stamp_to_ns(stamp) * 1e-9, result.T_odom_cam, s,
                                       est.relative_uncertainty if est is not None and est.known else None,
                                       getattr(result, "tracking_stats", None), getattr(result, "median_depth", None))
        self.last_sample = sample
        self._stamps.append(stamp)
        body = self.frames.body_frame(camera_frame)
        out: Dict[str, Any] = {}
        if odometry_msg:
            msg = odometry(sample.T_odom_base, stamp, odom_frame, body, pose_covariance=sample.pose_covariance)
            _twist_into(msg, sample)
            out["odometry"] = msg
        if not sample.scale_known:
            self.odometry_only += 1
            return out
        self.published_poses += 1
        if pose:
            out["pose"] = pose_stamped(sample.T_odom_base, stamp, odom_frame)
        if path_msg:
            out["path"] = self.path_message(stamp, odom_frame, s)
        if tf:
            edge = self.frames.published_edge(camera_frame, sample.T_odom_base,
                                              getattr(result, "T_odometry_base", None))
            if edge is not None:
                out["tf"] = transform_stamped(edge[2], stamp, edge[0], edge[1])
        return out

    def path_message(self, stamp, odom_frame: str, scale: Optional[float]) -> Path:
        _, T = self._odometry.path(scale)
        stamps = list(self._stamps)[-len(T):] if len(T) else []
        poses = [PoseStamped(header=Header(stamp=st, frame_id=odom_frame), pose=pose_stamped(Ti, st, odom_frame).pose)
                 for st, Ti in zip(stamps, T)]
        return Path(header=Header(stamp=stamp, frame_id=odom_frame), poses=poses)

    def describe(self) -> Dict[str, Any]:
        s = self.frame_settings
        info: Dict[str, Any] = {"body_frame": s.base_frame or "(camera frame)",
                                "odometry_lookup_failures": self.frames.odometry_failures,
                                "frames_with_odometry_only": self.odometry_only}
        if self._odometry is not None:
            info["path_length"] = round(self._odometry.path_length_m, 4)
        if self.frames.last_error:
            info["tf_last_error"] = self.frames.last_error
        return info
