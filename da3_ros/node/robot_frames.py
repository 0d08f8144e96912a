"""The node's robot frames (REP 105): which TF edges it reads, which one it publishes, configure-time rules.

No rclpy here: the TF lookup object is injected (``da3_ros.ros_io.tf_listener.create_transform_lookup``
in the node, a ``TransformBuffer`` in tests). Lookups may wait, so call them from the worker thread.

Edges **read**:

* ``base_frame -> camera frame`` (``T_base_cam``, the URDF's static mount): looked up on the first image
  (the camera frame may come from the image header), waiting up to ``tf_mount_timeout_s``; cached (treated
  as static, like isaac_ros_visual_slam). Until it is found the frame is dropped with the error.
* ``odometry_frame -> base_frame`` at every image stamp (``scale_source: odometry`` or ``pose_source:
  tf``), waiting up to ``tf_timeout_s`` (rtabmap's ``wait_for_transform``). A failed lookup does not drop
  the frame: it only gives no scale sample / no pose for conditioning.

Edge **published** on /tf (``publish_tf: true``), :meth:`RobotFrames.published_edge`:

* ``base_frame`` empty: ``odom_frame -> camera frame`` (the node's behaviour without a robot);
* the robot odometry is used and ``odometry_frame != odom_frame`` (e.g. ``wheel_odom``, which owns
  ``wheel_odom -> base_link``): ``odom_frame -> odometry_frame`` = ``T_odom_base @ inv(T_odometry_base)``,
  rtabmap's ``guess_frame_id`` convention, so that ``odom -> wheel_odom -> base_link`` equals the visual
  estimate and every frame keeps one parent;
* otherwise ``odom_frame -> base_frame``.

Refused at configure (:func:`robot_frame_problems`), each with its reason: a base frame equal to the odom
frame or the odometry frame; robot odometry without ``base_frame``; ``odometry_frame == odom_frame`` with
``publish_tf: true`` (the node would publish the very edge it reads).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

import numpy as np

from ..tf_tree.transform_buffer import TransformLookupError
from ..geometry.transforms import invert_transform
from ..pipeline.scale_source import PoseSource, ScaleSource

__all__ = ["RobotFrameError", "RobotFrameSettings", "robot_frame_problems", "RobotFrames"]


class RobotFrameError(RuntimeError):
    """A TF lookup the robot integration needs failed; the message names the frames and the fix."""


@dataclass(frozen=True)
class RobotFrameSettings:
    odom_frame: str = "odom"
    base_frame: str = ""
    camera_frame: str = ""
    odometry_frame: str = "odom"
    publish_tf: bool = True
    scale_source: ScaleSource = ScaleSource.NONE
    pose_source: PoseSource = PoseSource.NONE
    tf_timeout_s: float = 0.1
    tf_mount_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> "RobotFrameSettings":
        """From the node's parameter snapshot (missing names keep the defaults)."""
        kwargs = {}
        for name, f in cls.__dataclass_fields__.items():
            if name not in values:
                continue
            v = values[name]
            if isinstance(f.default, (ScaleSource, PoseSource)):
                kwargs[name] = type(f.default).parse(v)
            else:
                kwargs[name] = str(v).strip() if isinstance(f.default, str) else type(f.default)(v)
        return cls(**kwargs)

    @property
    def uses_odometry(self) -> bool:
        """The node reads ``odometry_frame -> base_frame`` from TF."""
        return self.scale_source.uses_odometry or self.pose_source is PoseSource.TF


def robot_frame_problems(values: Mapping[str, Any]) -> list[str]:
    """Configuration problems of the frame parameters (empty when fine); see the module docstring."""
    try:
        s = RobotFrameSettings.from_settings(values)
    except ValueError:   # an unknown scale_source / pose_source: reported by the parameter choices
        s = RobotFrameSettings.from_settings({**values, "scale_source": "none", "pose_source": "none"})
    problems = []
    frames = {"odom_frame": s.odom_frame, "base_frame": s.base_frame, "odometry_frame": s.odometry_frame,
              "camera_frame": s.camera_frame}
    for name, value in frames.items():
        if value.startswith("/") or " " in value:
            problems.append(f"{name} {value!r} must be a plain frame id (no leading '/', no spaces)")
    if not s.odom_frame:
        problems.append("odom_frame must not be empty")
    if s.base_frame and s.base_frame == s.odom_frame:
        problems.append(f"base_frame and odom_frame are both {s.base_frame!r}: the node publishes odom_frame -> "
                        "base_frame, a frame cannot be its own parent")
    if s.camera_frame and s.camera_frame == s.odom_frame:
        problems.append(f"camera_frame and odom_frame are both {s.camera_frame!r}")
    if s.uses_odometry:
        uses = ((f"scale_source: {s.scale_source}", s.scale_source.uses_odometry),
                ("pose_source: tf", s.pose_source is PoseSource.TF))
        users = " and ".join(name for name, on in uses if on)
        if not s.base_frame:
            problems.append(f"{users} need base_frame (the robot odometry is the pose of the base: "
                            "odometry_frame -> base_frame in TF); set base_frame, e.g. base_link")
        elif s.odometry_frame == s.base_frame:
            problems.append(f"odometry_frame and base_frame are both {s.base_frame!r}")
        if not s.odometry_frame:
            problems.append(f"{users} need odometry_frame (the frame of the robot's own odometry, e.g. odom "
                            "or wheel_odom)")
        elif s.publish_tf and s.odometry_frame == s.odom_frame and s.base_frame:
            problems.append(f"odometry_frame == odom_frame ({s.odom_frame!r}) with publish_tf: true: the node "
                            f"would publish {s.odom_frame} -> {s.base_frame}, the edge it reads the robot odometry "
                            "from. Either set publish_tf: false (another node, e.g. the wheel odometry or an EKF, "
                            "owns that edge) or give the robot odometry its own frame (odometry_frame: wheel_odom; "
                            "the node then publishes odom_frame -> odometry_frame)")
    return problems


class RobotFrames:
    """TF reads and the published edge for one configuration (module docstring).

    ``lookup``: anything with ``lookup(target, source, stamp_ns, timeout_s) -> T_target_source``.
    """

    def __init__(self, settings: RobotFrameSettings, lookup):
        self.settings = settings
        self._lookup = lookup
        self._mount: dict[str, np.ndarray] = {}
        self.odometry_failures = 0
        self.last_error = ""

    def body_frame(self, camera_frame: str) -> str:
        """The frame whose pose the node publishes: ``base_frame``, or the camera frame when it is empty."""
        return self.settings.base_frame or camera_frame

    def T_base_cam(self, camera_frame: str) -> np.ndarray:
        """The static mount base_frame -> ``camera_frame`` (identity without base_frame); cached.

        Raises ``RobotFrameError`` with the reason (no transform within ``tf_mount_timeout_s``)."""
        base = self.settings.base_frame
        if not base or base == camera_frame:
            return np.eye(4)
        cached = self._mount.get(camera_frame)
        if cached is not None:
            return cached.copy()
        try:
            T = self._lookup.lookup(base, camera_frame, 0, self.settings.tf_mount_timeout_s)
        except TransformLookupError as exc:
            self.last_error = (f"no transform {base} -> {camera_frame} (the camera mount) within "
                               f"{self.settings.tf_mount_timeout_s:g} s: {exc}. Publish the robot's URDF "
                               "(robot_state_publisher) or a static transform, check base_frame / camera_frame, "
                               "or leave base_frame empty to publish odom_frame -> camera frame")
            raise RobotFrameError(self.last_error) from exc
        T = np.asarray(T, np.float64)
        self._mount[camera_frame] = T.copy()
        return T

    def odometry_pose(self, stamp_ns: int) -> Optional[np.ndarray]:
        """``T_odometry_base`` at the image stamp, or None (counted, reason in ``last_error``) when TF
        cannot give it within ``tf_timeout_s``. None as well when the robot odometry is not used."""
        s = self.settings
        if not s.uses_odometry:
            return None
        try:
            return np.asarray(self._lookup.lookup(s.odometry_frame, s.base_frame, int(stamp_ns), s.tf_timeout_s),
                              np.float64)
        except TransformLookupError as exc:
            self.odometry_failures += 1
            self.last_error = (f"no robot odometry {s.odometry_frame} -> {s.base_frame} at the image stamp within "
                               f"{s.tf_timeout_s:g} s: {exc}")
            return None

    def published_edge(self, camera_frame: str, T_odom_body: np.ndarray,
                       T_odometry_base: Optional[np.ndarray]) -> Optional[Tuple[str, str, np.ndarray]]:
        """(parent, child, T_parent_child) to broadcast for a frame whose body pose is ``T_odom_body``
        (base, or camera without base_frame); None when the correction edge needs a robot odometry pose this
        frame lacks. Whether to broadcast at all is the caller's (``publish_tf`` may change at runtime)."""
        s = self.settings
        if not s.base_frame:
            return s.odom_frame, camera_frame, np.asarray(T_odom_body, np.float64)
        if s.uses_odometry and s.odometry_frame != s.odom_frame:
            if T_odometry_base is None:
                return None
            return s.odom_frame, s.odometry_frame, T_odom_body @ invert_transform(T_odometry_base)
        return s.odom_frame, s.base_frame, np.asarray(T_odom_body, np.float64)
