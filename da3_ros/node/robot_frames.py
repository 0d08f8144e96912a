"""The node's robot frames (REP 105): which TF edges it reads, which one it publishes, configure-time rules.

No rclpy here: the TF lookup object is injected (``da3_ros.ros_io.tf_listener.create_transform_lookup``
in the node, a ``TransformBuffer`` in tests). Only the odometry lookup of a pose-conditioned model waits
(``tf_timeout_s``), so call them from the worker thread.

Edges **read**:

* ``base_frame -> camera frame`` (``T_base_cam``, the URDF's static mount): the very first lookup of a mount
  waits up to ``MOUNT_FIRST_WAIT_S`` (1 s, at most ``tf_mount_timeout_s``: a driver's /tf_static can arrive just
  after its first image); once found it is cached (treated as static, like isaac_ros_visual_slam). A failure is
  remembered: the frame is dropped with the error and the mount is looked up again, without waiting, only after
  an exponential back-off (0.1 s, 0.2 s, ... up to ``tf_mount_timeout_s``), so a missing mount stalls the worker
  once at bring-up at most.
* ``odometry_frame -> base_frame`` at every image stamp (``scale_source: odometry`` or ``pose_source:
  tf``). A pose-conditioned model needs it before inference (waiting up to ``tf_timeout_s``); for the scale
  alone the node looks it up after inference without waiting (the late odometry has arrived by then). A failed
  lookup does not drop the frame: it only gives no scale sample / no pose for conditioning.
* default mode (no ``base_frame``): the static ancestors of the camera frame (:meth:`RobotFrames.camera_tree`).

Edge **published** on /tf (``publish_tf: true``), :meth:`RobotFrames.published_edge`, never a second parent:

* ``base_frame`` empty (**camera-only**): when the camera frame has no parent, ``odom_frame -> camera frame``,
  with ``odom`` the first camera pose rotated to REP 103 body axes (x forward, y left, z up:
  ``T_BODY_OPTICAL``), so the RViz grid lies on the floor for a level camera. When the camera frame already has
  a parent on /tf_static (a RealSense / ZED driver: ``camera_link -> camera_color_frame ->
  camera_color_optical_frame``), the node publishes ``odom_frame -> <the root of that static tree>``
  (``camera_link``) computed through the static chain, and that root is the body (``odom`` = the root at the first
  frame); the camera keeps its one parent. When that root has a dynamic parent (another node's odometry), the
  node publishes no TF and says the fix (``CameraTree.refused``);
* **correction mode**: the robot odometry is used and ``odometry_frame != odom_frame`` (e.g. ``wheel_odom``,
  which owns ``wheel_odom -> base_link``): ``odom_frame -> odometry_frame`` = ``T_odom_base @
  inv(T_odometry_base)``, rtabmap's ``guess_frame_id`` convention, so that ``odom -> wheel_odom -> base_link``
  equals the visual estimate; identity until the scale is known, republished on a timer (the node);
* otherwise ``odom_frame -> base_frame``.

Refused at configure (:func:`robot_frame_problems`), each with its reason: a base frame equal to the odom
frame or the odometry frame; an empty ``map_frame`` or one equal to another frame of the node; robot odometry
without ``base_frame``; ``odometry_frame == odom_frame`` with ``publish_tf: true`` (the node would publish the very
edge it reads).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Tuple

import numpy as np

from ..tf_tree.transform_buffer import TransformLookupError
from ..geometry.transforms import invert_transform
from ..pipeline.scale_source import PoseSource, ScaleSource

__all__ = ["RobotFrameError", "RobotFrameSettings", "robot_frame_problems", "RobotFrames", "CameraTree",
           "T_BODY_OPTICAL", "MOUNT_RETRY_FIRST_S"]

#: REP 103 body axes (x forward, y left, z up) from camera optical axes (z forward, x right, y down): the
#: rotation of a URDF's ``camera_link -> camera_optical_frame`` (rpy -pi/2, 0, -pi/2)
T_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0, 0.0],
                           [-1.0, 0.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0, 0.0],
                           [0.0, 0.0, 0.0, 1.0]])

#: the first back-off after a failed mount lookup (seconds); it doubles up to ``tf_mount_timeout_s``
MOUNT_RETRY_FIRST_S = 0.1
#: bring-up grace: the very first lookup of a mount waits up to this long (at most ``tf_mount_timeout_s``), since a
#: camera driver's /tf_static can reach the node just after its first image; after that, lookups never wait
MOUNT_FIRST_WAIT_S = 1.0


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
    tf_publish_rate_hz: float = 20.0
    transform_tolerance_s: float = 0.5
    map_frame: str = "map"
    loop_closure: bool = True

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

    @property
    def correction_mode(self) -> bool:
        """The node publishes ``odom_frame -> odometry_frame`` (the robot odometry owns ``odometry_frame -> base``)."""
        return bool(self.base_frame) and self.uses_odometry and bool(self.odometry_frame) \
            and self.odometry_frame != self.odom_frame


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
    problems += _map_frame_problems(s)
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


def _map_frame_problems(s: RobotFrameSettings) -> list[str]:
    """``map_frame`` (checked whatever ``loop_closure`` says: a map can be loaded or switched on in the same file):
    a plain, non-empty frame id, no other frame of the node (it is the parent of ``odom_frame``)."""
    if not s.map_frame:
        return ["map_frame must not be empty (the frame of the loop-closed map, e.g. map)"]
    if s.map_frame.startswith("/") or " " in s.map_frame:
        return [f"map_frame {s.map_frame!r} must be a plain frame id (no leading '/', no spaces)"]
    others = {"odom_frame": s.odom_frame, "base_frame": s.base_frame, "camera_frame": s.camera_frame,
              "odometry_frame": s.odometry_frame if s.uses_odometry else ""}
    return [f"map_frame and {name} are both {s.map_frame!r}: the node publishes map_frame -> {s.odom_frame}, "
            "the map needs its own frame" for name, value in others.items() if value == s.map_frame]


@dataclass(frozen=True)
class CameraTree:
    """Camera-only mode: what the node publishes for a camera frame (:meth:`RobotFrames.camera_tree`).

    ``body_frame``: the child of ``odom_frame`` on /tf and of the pose outputs (the camera frame, or the root of
    its static tree); ``T_body_cam``: that root's static chain to the camera (identity without a tree);
    ``T_odom_vis``: ``odom`` from the first camera pose (REP 103 axes without a tree, the root with one);
    ``refused``: the reason (with the fix) when no edge can be published without a second parent, else "".
    """

    camera_frame: str
    body_frame: str
    T_body_cam: np.ndarray
    T_odom_vis: np.ndarray
    refused: str = ""

    def describe(self) -> str:
        if self.refused:
            return f"no TF ({self.refused})"
        if self.body_frame == self.camera_frame:
            return f"{self.camera_frame} has no parent: odom -> {self.camera_frame} (odom in REP 103 axes)"
        return f"{self.camera_frame} is in the static tree of {self.body_frame}: odom -> {self.body_frame}"


@dataclass
class _MountFailure:
    failures: int
    retry_at: float
    error: str


class RobotFrames:
    """TF reads and the published edge for one configuration (module docstring).

    ``lookup``: anything with ``lookup(target, source, stamp_ns, timeout_s) -> T_target_source``.
    """

    def __init__(self, settings: RobotFrameSettings, lookup, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._lookup = lookup
        self._clock = clock
        self._mount: dict[str, np.ndarray] = {}
        self._mount_failures: dict[str, _MountFailure] = {}
        self.mount_lookups = 0
        self.odometry_failures = 0
        self.last_error = ""

    def body_frame(self, camera_frame: str) -> str:
        """The frame whose pose the node publishes: ``base_frame``, or the camera frame when it is empty."""
        return self.settings.base_frame or camera_frame

    def T_base_cam(self, camera_frame: str) -> np.ndarray:
        """The static mount base_frame -> ``camera_frame`` (identity without base_frame); cached. Only its very first
        lookup waits (``MOUNT_FIRST_WAIT_S``, bring-up grace); after a failure it never waits.

        Raises ``RobotFrameError`` with the reason when it is not in TF; the failure is remembered and the next
        lookup happens only after the back-off (module docstring): until then the remembered error is raised."""
        base = self.settings.base_frame
        if not base or base == camera_frame:
            return np.eye(4)
        cached = self._mount.get(camera_frame)
        if cached is not None:
            return cached.copy()
        now = self._clock()
        failed = self._mount_failures.get(camera_frame)
        if failed is not None and now < failed.retry_at:
            raise RobotFrameError(failed.error)
        wait = 0.0 if failed is not None else min(MOUNT_FIRST_WAIT_S, self.settings.tf_mount_timeout_s)
        self.mount_lookups += 1
        try:
            T = self._lookup.lookup(base, camera_frame, 0, wait)
        except TransformLookupError as exc:
            n = failed.failures + 1 if failed is not None else 1
            longest = max(self.settings.tf_mount_timeout_s, MOUNT_RETRY_FIRST_S)
            backoff = min(MOUNT_RETRY_FIRST_S * 2 ** (n - 1), longest)
            self.last_error = (f"no transform {base} -> {camera_frame} (the camera mount): {exc}. Publish the robot's "
                               "URDF (robot_state_publisher) or a static transform, check base_frame / camera_frame, "
                               "or leave base_frame empty to publish odom_frame -> camera frame "
                               f"({n} failed lookup(s); the next one in {backoff:g} s, frames are dropped until then)")
            self._mount_failures[camera_frame] = _MountFailure(n, now + backoff, self.last_error)
            raise RobotFrameError(self.last_error) from exc
        T = np.asarray(T, np.float64)
        self._mount[camera_frame] = T.copy()
        self._mount_failures.pop(camera_frame, None)
        return T

    def camera_tree(self, camera_frame: str) -> CameraTree:
        """Camera-only mode: the static tree the camera frame is in, as the TF listener knows it now (module
        docstring). Call before the node published anything for this camera (its own edge would be seen)."""
        s = self.settings
        rep103 = CameraTree(camera_frame, camera_frame, np.eye(4), T_BODY_OPTICAL.copy())
        parent_of = getattr(self._lookup, "parent_of", None)
        if parent_of is None:
            return rep103
        frame, T_root_cam = camera_frame, np.eye(4)
        for _ in range(1000):   # a longer walk is a loop (the buffer reports it on lookup)
            parent = parent_of(frame)
            if parent is None:
                break
            try:
                T_parent_frame, used_ns = self._lookup.lookup_stamped(parent, frame, 0, 0.0)
            except TransformLookupError:
                used_ns, T_parent_frame = -1, None
            if used_ns != 0 or parent == s.odom_frame:
                fix = (f"set base_frame: {frame} (the node then reads the camera mount {frame} -> {camera_frame} and "
                       f"publishes {s.odom_frame} -> {frame}: only if nothing else publishes {frame}'s parent), or "
                       f"publish_tf: false (another node owns {parent} -> {frame}), or give the other odometry its "
                       f"own frame with base_frame + odometry_frame: {parent}")
                return CameraTree(camera_frame, camera_frame, np.eye(4), T_BODY_OPTICAL.copy(),
                                  refused=(f"camera frame '{camera_frame}' hangs below '{frame}', whose parent "
                                           f"'{parent}' is dynamic (another node's odometry): publishing "
                                           f"{s.odom_frame} -> {frame} would give it a second parent. Fix: {fix}"))
            T_root_cam = np.asarray(T_parent_frame, np.float64) @ T_root_cam
            frame = parent
        if frame == camera_frame:
            return rep103
        return CameraTree(camera_frame, frame, T_root_cam, T_root_cam.copy())

    def odometry_pose(self, stamp_ns: int, timeout_s: Optional[float] = None, count: bool = True
                      ) -> Optional[np.ndarray]:
        """``T_odometry_base`` at the image stamp, or None (``count``: counted, reason in ``last_error``) when TF
        cannot give it within ``timeout_s`` (default ``tf_timeout_s``; 0: no wait). None as well when the robot
        odometry is not used."""
        s = self.settings
        if not s.uses_odometry:
            return None
        wait = s.tf_timeout_s if timeout_s is None else float(timeout_s)
        try:
            return np.asarray(self._lookup.lookup(s.odometry_frame, s.base_frame, int(stamp_ns), wait), np.float64)
        except TransformLookupError as exc:
            if not count:
                return None
            self.odometry_failures += 1
            self.last_error = (f"no robot odometry {s.odometry_frame} -> {s.base_frame} at the image stamp "
                               f"({'without waiting' if wait <= 0 else f'within {wait:g} s'}): {exc}")
            return None

    def published_edge(self, body_frame: str, T_odom_body: np.ndarray,
                       T_odometry_base: Optional[np.ndarray]) -> Optional[Tuple[str, str, np.ndarray]]:
        """(parent, child, T_parent_child) to broadcast for a frame whose body pose is ``T_odom_body`` (base, or
        in camera-only mode ``CameraTree.body_frame``); None when the correction edge needs a robot odometry pose
        this frame lacks. Whether to broadcast at all is the caller's (``publish_tf`` may change at runtime)."""
        s = self.settings
        if s.correction_mode:
            if T_odometry_base is None:
                return None
            return s.odom_frame, s.odometry_frame, T_odom_body @ invert_transform(T_odometry_base)
        return s.odom_frame, s.base_frame or body_frame, np.asarray(T_odom_body, np.float64)
