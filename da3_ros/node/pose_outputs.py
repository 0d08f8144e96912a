"""Pose outputs of the node (pose, odometry, path, /tf) for a robot (REP 105) or a bare camera.

Used by ``da3_node``: the worker calls :meth:`PoseOutputs.inputs` before a frame (TF reads, never waiting
except the odometry a pose-conditioned model needs) and :meth:`PoseOutputs.messages` after it, then publishes
what it returns; its TF timer publishes :meth:`PoseOutputs.republished_edges` (the correction edge, ``map ->
odom``) stamped ahead. The ROS-free
parts are ``RobotFrames`` (which edges) and ``BaseOdometry`` (poses, twist, covariance); this class keeps the
trajectory state and turns them into messages (only those asked for are built; the state is kept whatever is
asked, so switching an output on shows the whole path).

Publishing convention, per processed frame:

* **tracked, in metres** (a metric scale is known): ``pose`` (PoseStamped of the body in ``odom_frame``),
  ``odometry`` (child: ``base_frame``, or in camera-only mode the camera frame / the root of its static tree;
  twist in the child frame; covariances from the model of ``tracking.base_trajectory``), ``path`` (the kept
  history re-expressed at the current scale) and the TF edge of ``RobotFrames.published_edge``;
* **tracked, not in metres** (no scale source, or not known yet): only when ``publish_unscaled`` allows
  (``output_units.UnitPolicy``; ``auto``: when no scale source is configured): everything as above, in
  odometry units, position / linear-velocity variances ``1e6`` (an EKF ignores them and can still fuse the
  orientation); otherwise nothing (counted as withheld);
* **correction mode** (``odom_frame -> odometry_frame``): never per frame; the edge exists from the first
  frame (identity until the scale is known), and the node republishes the latest one at ``tf_publish_rate_hz``
  stamped ``now + transform_tolerance_s``;
* **loop closure active** (the processor gives ``T_map_odom``): ``map_frame -> odom_frame`` from the first frame
  (identity until the first loop or relocalisation), republished with the correction edge by the same timer;
  ``odom_frame`` is the parent of the trajectory in every mode (correction mode: ``map -> odom -> odometry_frame
  -> base``), so a loop closure never moves the robot odometry's own edge;
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

from ..geometry.transforms import invert_transform
from ..ros_io import odometry, pose_stamped, stamp_to_ns, transform_stamped
from ..tracking.base_trajectory import BaseOdometry, BaseOdometrySample
from .output_units import UnitPolicy
from .robot_frames import CameraTree, RobotFrames, RobotFrameSettings

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

    def __init__(self, settings: Mapping[str, Any], lookup_factory: Callable[[], Any], scale_expected: bool,
                 units: Optional[UnitPolicy] = None):
        self.frame_settings = RobotFrameSettings.from_settings(settings)
        s = self.frame_settings
        # camera-only mode with TF: the camera's static tree is read (never a second parent)
        needs_tf = bool(s.base_frame) or s.uses_odometry or s.publish_tf
        self._lookup = lookup_factory() if needs_tf else None
        self.frames = RobotFrames(s, self._lookup)
        self.scale_expected = bool(scale_expected)
        self.units = units if units is not None else UnitPolicy(settings.get("publish_unscaled", "auto"),
                                                                scale_expected)
        self.path_max_length = int(settings.get("path_max_length", 1000))
        self._odometry: Optional[BaseOdometry] = None
        self._camera_frame = ""
        self._body_frame = ""
        self.camera_tree: Optional[CameraTree] = None
        self._stamps: Deque[Any] = deque(maxlen=self.path_max_length)
        self._correction: Optional[Tuple[str, str, np.ndarray]] = None   # odom -> odometry_frame (timer)
        self.published_poses = 0
        self.odometry_only = 0
        self.withheld_frames = 0
        self.tf_refused = 0
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
    def inputs(self, camera_frame: str, stamp_ns: int, odometry: bool = True
               ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(T_base_cam, T_odometry_base or None) for this image (``odometry`` False: not looked up now, the node
        asks :meth:`late_odometry` after inference). Raises ``RobotFrameError`` when the camera mount is not in
        TF (the frame must be dropped: nothing can be placed on the robot); never waits for the mount."""
        T_base_cam = self.frames.T_base_cam(camera_frame)
        s = self.frame_settings
        if s.base_frame and (self._odometry is None or camera_frame != self._camera_frame):
            self._start(camera_frame, s.base_frame, T_base_cam, T_base_cam)
        if s.correction_mode and self._correction is None:   # the edge exists from the first frame
            self._correction = (s.odom_frame, s.odometry_frame, np.eye(4))
        return T_base_cam, (self.frames.odometry_pose(stamp_ns) if odometry else None)

    def late_odometry(self, stamp_ns: int) -> Optional[np.ndarray]:
        """``T_odometry_base`` at ``stamp_ns`` without waiting (after inference, for the scale alone)."""
        return self.frames.odometry_pose(stamp_ns, timeout_s=0.0)

    def earlier_odometry(self, stamp_ns: int) -> Optional[np.ndarray]:
        """``T_odometry_base`` at an earlier frame's stamp without waiting, not counted (the scale retries the
        frames whose odometry came after their inference: ``RobotOdometry``)."""
        return self.frames.odometry_pose(stamp_ns, timeout_s=0.0, count=False)

    def _start(self, camera_frame: str, body_frame: str, T_base_cam: np.ndarray, T_odom_vis: np.ndarray) -> None:
        self._odometry = BaseOdometry(T_base_cam, scale_expected=self.scale_expected,
                                      max_history=self.path_max_length, T_odom_vis=T_odom_vis)
        self._stamps.clear()
        self._camera_frame = camera_frame
        self._body_frame = body_frame

    def _start_camera_only(self, camera_frame: str) -> None:
        """Camera-only mode: odom and the published child from the camera's static tree (``RobotFrames``)."""
        tree = self.frames.camera_tree(camera_frame)
        self.camera_tree = tree
        self._start(camera_frame, tree.body_frame, tree.T_body_cam, tree.T_odom_vis)
        if tree.refused:
            self.frames.last_error = tree.refused

    def correction_edge(self) -> Optional[Tuple[str, str, np.ndarray]]:
        """(odom_frame, odometry_frame, T) to republish (correction mode, from the first frame on), else None."""
        return self._correction

    def map_edge(self, T_map_vis: Optional[np.ndarray], metres_per_unit: Optional[float]
                 ) -> Optional[Tuple[str, str, np.ndarray]]:
        """(map_frame, odom_frame, T_map_odom) for the processor's loop correction ``T_map_vis`` (its map from its
        visual odometry frame, odometry units), or None (loop closure inactive, or before the first frame).

        The ROS map frame has the axes of ``odom`` (REP 105: both coincide until the first correction), so the
        correction is conjugated by ``T_odom_vis``: ``T_map_odom = T_odom_vis @ S(T_map_vis, s) @ inv(T_odom_vis)``,
        ``S`` scaling the translation to metres. Scale unknown: identity when a metric scale is expected (as the
        correction edge), else in odometry units."""
        if T_map_vis is None or self._odometry is None:
            return None
        s = self.frame_settings
        if metres_per_unit is None and self.scale_expected:
            return s.map_frame, s.odom_frame, np.eye(4)
        T_odom_vis = self._odometry.T_odom_vis
        T = np.array(T_map_vis, np.float64)
        if metres_per_unit is not None:
            T[:3, 3] *= float(metres_per_unit)
        return s.map_frame, s.odom_frame, T_odom_vis @ T @ invert_transform(T_odom_vis)

    def map_points_transform(self) -> Optional[np.ndarray]:
        """``T_map_mapvis``: the processor's map points into ``map_frame`` (``T_odom_vis``; None before the first
        frame)."""
        return None if self._odometry is None else self._odometry.T_odom_vis.copy()

    def republished_edges(self, T_map_vis: Optional[np.ndarray], metres_per_unit: Optional[float]
                          ) -> list[Tuple[str, str, np.ndarray]]:
        """Every edge the node's TF timer republishes stamped ``now + transform_tolerance_s``: the correction edge
        (correction mode) and ``map_frame -> odom_frame`` (loop closure active); see :meth:`map_edge`."""
        return [e for e in (self._correction, self.map_edge(T_map_vis, metres_per_unit)) if e is not None]

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
        if not self.frame_settings.base_frame and (self._odometry is None or camera_frame != self._camera_frame):
            self._start_camera_only(camera_frame)   # before anything of ours is in the TF buffer
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
        if not self.units.allows(sample.scale_known, "pose", "odometry units"):
            self.withheld_frames += 1
            return {}
        if not sample.scale_known:
            self.odometry_only += 1
        self.published_poses += 1
        body = self._body_frame
        out: Dict[str, Any] = {}
        if odometry_msg:
            msg = odometry(sample.T_odom_base, stamp, odom_frame, body, pose_covariance=sample.pose_covariance)
            _twist_into(msg, sample)
            out["odometry"] = msg
        if pose:
            out["pose"] = pose_stamped(sample.T_odom_base, stamp, odom_frame)
        if path_msg:
            out["path"] = self.path_message(stamp, odom_frame, s)
        edge = self.frames.published_edge(body, sample.T_odom_base, getattr(result, "T_odometry_base", None))
        if self.frame_settings.correction_mode:
            if edge is not None:
                self._correction = edge   # republished by the node's TF timer
        elif self.camera_tree is not None and self.camera_tree.refused:
            self.tf_refused += 1
        elif tf and edge is not None:
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
        info: Dict[str, Any] = {"body_frame": s.base_frame or self._body_frame or "(camera frame)",
                                "odometry_lookup_failures": self.frames.odometry_failures,
                                "mount_lookups": self.frames.mount_lookups,
                                "frames_published_not_metres": self.odometry_only,
                                "frames_withheld_not_metres": self.withheld_frames}
        info.update(self.units.describe())
        if s.correction_mode:
            info["tf_correction_edge"] = (f"{s.odom_frame} -> {s.odometry_frame} at {s.tf_publish_rate_hz:g} Hz, "
                                          f"stamped now + {s.transform_tolerance_s:g} s")
        if s.loop_closure:
            info["tf_map_edge"] = (f"{s.map_frame} -> {s.odom_frame} at {s.tf_publish_rate_hz:g} Hz, stamped now + "
                                   f"{s.transform_tolerance_s:g} s, while loop closure is active")
        if self.camera_tree is not None:
            info["tf_camera_tree"] = self.camera_tree.describe()
            if self.camera_tree.refused:
                info["tf_refused"] = self.tf_refused
        if self._odometry is not None:
            info["path_length"] = round(self._odometry.path_length_m, 4)
        if self.frames.last_error:
            info["tf_last_error"] = self.frames.last_error
        return info
