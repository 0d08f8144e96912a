"""The robot's own odometry inside the frame pipeline (ROS-free): pose-conditioned windows and metric scale.

``RobotOdometry`` is what ``WindowProcessor`` consults when ``scale_source: odometry`` or ``pose_source: tf``
is configured. The node looks up, for every image, the robot odometry pose ``T_odometry_base`` at the image
stamp (TF ``odometry_frame -> base_frame``) and the static mount ``T_base_cam``; this class keeps them per
frame id and:

* **pose-conditioned windows** (``pose_source: tf``, a pose-conditioned model): builds each window's
  :class:`~da3_ros.geometry.pose_conditioning.PoseConditionedWindow` from the views' camera poses
  ``T_odometry_cam = T_odometry_base(stamp of the view) @ T_base_cam`` and the network intrinsics
  (camera_info; a centred ``DEFAULT_HFOV_DEG`` guess without it, said in the reason), feeds its pose
  encoding to the backend and aligns the prediction back: depth in metres, extrinsics = the given poses in
  the odometry frame (the official ``inference(..., align_to_input_ext_scale=True)``). Such a window is
  **already in metres in the odometry frame**: the tracker places it by SE(3) (``WindowTracker.place``) and
  nothing rescales it. A window is never conditioned on invented poses: when a view has no odometry pose,
  ``condition`` raises :class:`~.window_dropped.WindowDropped` (``no_odometry``; a pose-conditioned graph
  always takes the pose input, so it cannot run unconditioned). When the given centres coincide (robot
  standing, the padded first windows) the official alignment has no answer (evo raises): ``align`` returns
  the raw depth with the given extrinsics and ``conditioned`` False; the processor places the pose and
  publishes no depth for it (NaN, counted as ``windows_unconditioned``).
* **metric scale**: ``scale_source: odometry``: :class:`~da3_ros.tracking.metric_scale.OdometryScaleEstimator`
  (visual camera poses against ``T_odometry_base @ T_base_cam``); else with ``pose_source: tf``:
  :class:`~da3_ros.tracking.conditioned_scale.ConditionedScaleEstimator` (``1 / FrameResult.scale`` of
  the conditioned windows). ``scale_estimate`` is the current :class:`ScaleEstimate` (None: no source).
  **Late odometry** (issue 19): a tracked frame whose odometry was not in TF yet after its inference waits (its
  stamp, visual pose and median depth; at most ``MAX_AWAITING_ODOMETRY`` frames, ``ODOMETRY_WAIT_S`` of stamps)
  and is added to the estimator, in stamp order, on a later frame once ``odometry_at(stamp_ns)`` (a lookup without
  waiting) finds it; frames older than one that was found, or older than the wait, are given up (a gap in the
  odometry: TF would interpolate across it once the odometry resumes, so a long wait would invent poses).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..geometry.camera import DEFAULT_HFOV_DEG, PinholeCamera
from ..geometry.pose_conditioning import PoseConditionedWindow, PoseConditioningError
from ..tracking.conditioned_scale import ConditionedScaleConfig, ConditionedScaleEstimator
from ..tracking.metric_scale import OdometryScaleEstimator, ScaleEstimate, ScaleEstimatorConfig
from .scale_source import PoseSource, ScaleSource
from .window_dropped import NO_ODOMETRY, WindowDropped

#: tracked frames kept for a late odometry, and for how long (seconds of image stamps); older ones are given up
MAX_AWAITING_ODOMETRY = 30
ODOMETRY_WAIT_S = 0.5

__all__ = ["RobotOdometryConfig", "WindowConditioning", "RobotOdometry"]


@dataclass(frozen=True)
class RobotOdometryConfig:
    """``scale_source`` / ``pose_source`` (strings are parsed by :mod:`.scale_source`, the one validation)."""

    scale_source: ScaleSource = ScaleSource.NONE
    pose_source: PoseSource = PoseSource.NONE
    scale: ScaleEstimatorConfig = field(default_factory=ScaleEstimatorConfig)
    conditioned_scale: ConditionedScaleConfig = field(default_factory=ConditionedScaleConfig)

    def __post_init__(self):
        object.__setattr__(self, "scale_source", ScaleSource.parse(self.scale_source))
        object.__setattr__(self, "pose_source", PoseSource.parse(self.pose_source))

    @property
    def active(self) -> bool:
        """The robot odometry is read: for the scale (odometry, rig_odometry) or the window poses (tf)."""
        return self.scale_source.uses_odometry or self.pose_source is PoseSource.TF

    @property
    def scale_expected(self) -> bool:
        """A metric scale comes from the robot odometry (the outputs become metres once it is known)."""
        return self.active


@dataclass(frozen=True)
class WindowConditioning:
    """What a window is fed: ``encoding`` (N, 9) float32 for a pose-conditioned backend (None otherwise),
    ``window`` the conditioning to align back with (None: not aligned), ``reason`` when it is not."""

    encoding: Optional[np.ndarray]
    window: Optional[PoseConditionedWindow]
    reason: str = ""

    @property
    def conditioned(self) -> bool:
        return self.window is not None


class RobotOdometry:
    """See the module docstring. ``pose_conditioned``: the backend takes a pose encoding;
    ``network_hw``: its input size (h, w)."""

    def __init__(self, config: RobotOdometryConfig, *, pose_conditioned: bool, network_hw: Tuple[int, int],
                 T_base_cam: Optional[np.ndarray] = None):
        if config.pose_source is PoseSource.TF and not pose_conditioned:
            raise ValueError("pose_source: tf needs a pose-conditioned model (export it with da3-export onnx "
                             "--pose-conditioned); this model takes no poses")
        if pose_conditioned and config.pose_source is not PoseSource.TF:
            raise ValueError("the model is pose-conditioned (it needs the window's camera poses): set "
                             "pose_source: tf (with base_frame and odometry_frame), or use a model exported "
                             "without --pose-conditioned")
        self.config = config
        self.pose_conditioned = bool(pose_conditioned)
        self.network_hw = (int(network_hw[0]), int(network_hw[1]))
        self._T_base_cam = np.eye(4) if T_base_cam is None else np.asarray(T_base_cam, np.float64)
        self._odometry: Dict[Hashable, Optional[np.ndarray]] = {}
        self._scale = self._make_scale_estimator()
        # tracked frames whose odometry had not arrived: (stamp s, stamp ns, T_odom_cam, median depth, reinitialised)
        self._awaiting: List[Tuple[float, int, np.ndarray, Optional[float], bool]] = []
        self.last_pose_residual: Optional[float] = None
        self.windows_conditioned = 0
        self.windows_unconditioned = 0
        self.windows_no_odometry = 0
        self.last_conditioning_reason = ""

    def _make_scale_estimator(self):
        if self.pose_conditioned:
            return ConditionedScaleEstimator(self.config.conditioned_scale)
        if self.config.scale_source.uses_odometry:
            return OdometryScaleEstimator(self._T_base_cam, self.config.scale)
        if self.config.pose_source is PoseSource.TF:
            return ConditionedScaleEstimator(self.config.conditioned_scale)
        return None

    # -- frames ----------------------------------------------------------------------------
    @property
    def T_base_cam(self) -> np.ndarray:
        return self._T_base_cam.copy()

    def set_base_camera(self, T_base_cam: np.ndarray) -> None:
        """A (new) static mount: the scale estimate restarts when it changed."""
        T = np.asarray(T_base_cam, np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"T_base_cam must be a finite 4x4, got shape {T.shape}")
        if not np.allclose(T, self._T_base_cam, atol=1e-9):
            self._T_base_cam = T.copy()
            self._scale = self._make_scale_estimator()

    def add_frame(self, frame_id: Hashable, T_odometry_base: Optional[np.ndarray]) -> None:
        """The robot odometry pose at frame ``frame_id``'s stamp (None: the TF lookup failed)."""
        self._odometry[frame_id] = None if T_odometry_base is None else np.asarray(T_odometry_base, np.float64)

    def odometry_pose(self, frame_id: Hashable) -> Optional[np.ndarray]:
        return self._odometry.get(frame_id)

    def keep_frames(self, frame_ids: Iterable[Hashable]) -> None:
        """Forget the poses of frames that can no longer be in a window (not keyframes, not the newest)."""
        keep = set(frame_ids)
        self._odometry = {k: v for k, v in self._odometry.items() if k in keep}

    # -- pose-conditioned windows -------------------------------------------------------------
    def condition(self, frame_ids: Sequence[Hashable], K_net: Optional[np.ndarray],
                  T_base_cam_views: Optional[np.ndarray] = None) -> WindowConditioning:
        """The pose encoding and conditioning of the window ``frame_ids`` (oldest first, newest last; one id per
        view). ``K_net``: (3, 3) or (N, 3, 3) network intrinsics (None: guessed). A rig window passes each view's
        snapshot id and ``T_base_cam_views`` (N, 4, 4), the mount of each view's camera (default: this
        camera's mount for every view), so view poses are ``T_odometry_base(snapshot) @ T_base_cam(camera)``."""
        if not self.pose_conditioned:
            return WindowConditioning(None, None, "model not pose-conditioned")
        h, w = self.network_hw
        note = ""
        if K_net is None:
            K_net = PinholeCamera.centred(w, h, DEFAULT_HFOV_DEG).K
            note = f"; no camera_info: intrinsics guessed ({DEFAULT_HFOV_DEG:g} deg horizontal field of view)"
        poses: List[Optional[np.ndarray]] = [self._odometry.get(i) for i in frame_ids]
        missing = [k for k, T in enumerate(poses) if T is None]
        if missing:
            self.windows_no_odometry += 1
            self.last_conditioning_reason = (f"no odometry pose for view(s) {missing}: window dropped "
                                             "(a pose-conditioned window is never run on invented poses)")
            raise WindowDropped(NO_ODOMETRY, self.last_conditioning_reason)
        mounts = ([self._T_base_cam] * len(poses) if T_base_cam_views is None
                  else [np.asarray(T, np.float64) for T in T_base_cam_views])
        T_world_cam = np.stack([T @ M for T, M in zip(poses, mounts)])
        window = PoseConditionedWindow.from_poses(T_world_cam, K_net, (h, w))
        encoding = window.pose_encoding[0].astype(np.float32)
        return WindowConditioning(encoding, window, note.lstrip("; "))

    def align(self, conditioning: WindowConditioning, prediction) -> Tuple[object, bool, str]:
        """(prediction, conditioned, reason): the prediction in the odometry frame, its extrinsics the given ones.
        ``conditioned``: aligned back to the given poses (depth in metres, the official answer); False when the
        given centres coincide (no baseline): the depth is then the network's, in no known unit."""
        window = conditioning.window
        if window is None:   # the model is not pose-conditioned
            self.last_conditioning_reason = conditioning.reason
            return prediction, False, conditioning.reason
        given = np.ascontiguousarray(window.extrinsics[:, :3, :], np.float32)
        try:
            aligned = window.align(prediction.depth, prediction.extrinsics)
        except PoseConditioningError as exc:
            self.windows_unconditioned += 1
            self.last_conditioning_reason = f"not aligned to TF (no depth published): {exc}"
            return dataclasses.replace(prediction, extrinsics=given), False, self.last_conditioning_reason
        self.windows_conditioned += 1
        self.last_pose_residual = aligned.pose_residual
        self.last_conditioning_reason = conditioning.reason or "aligned to TF poses"
        out = dataclasses.replace(prediction, depth=np.ascontiguousarray(aligned.depth, np.float32),
                                  extrinsics=np.ascontiguousarray(aligned.extrinsics, np.float32))
        return out, True, conditioning.reason

    # -- metric scale ---------------------------------------------------------------------------
    @property
    def scale_estimate(self) -> Optional[ScaleEstimate]:
        return None if self._scale is None else self._scale.estimate

    @property
    def metres_per_unit(self) -> Optional[float]:
        """The metric scale when known (metres per odometry unit), else None."""
        est = self.scale_estimate
        return est.scale if est is not None and est.known else None

    def placed_relative_uncertainty(self) -> float:
        """Relative uncertainty of placed (pose-conditioned) windows' metres: the spread of their re-estimated
        scales against the shared keyframes (``ConditionedScaleEstimator.relative_uncertainty``); the estimator's
        ``max_relative_uncertainty`` (5 %) until two windows were measured."""
        limit = self.config.conditioned_scale.max_relative_uncertainty
        if not isinstance(self._scale, ConditionedScaleEstimator):
            return limit
        rel = self._scale.relative_uncertainty()
        return limit if rel is None else float(rel)

    def update_scale(self, frame_id: Hashable, stamp: float, T_odom_cam: Optional[np.ndarray],
                     window_scale: Optional[float], median_depth: Optional[float], reinitialised: bool,
                     conditioned: bool, odometry_at: Optional[Callable[[int], Optional[np.ndarray]]] = None,
                     stamp_ns: Optional[int] = None) -> Optional[ScaleEstimate]:
        """After the tracker: one frame (``T_odom_cam`` None: rejected). Returns the current estimate.
        ``odometry_at``: ``T_odometry_base`` at a stamp (ns) without waiting, for frames whose odometry came late
        (with ``stamp_ns``, this frame's stamp; the module docstring)."""
        if self._scale is None:
            return None
        if isinstance(self._scale, OdometryScaleEstimator):
            T_odo = self._odometry.get(frame_id)
            md = median_depth if median_depth is not None and np.isfinite(median_depth) and median_depth > 0 else None
            if reinitialised:
                self._awaiting.clear()     # the waiting frames belong to the previous visual trajectory
            if T_odom_cam is not None and T_odo is None and odometry_at is not None and stamp_ns is not None:
                self._awaiting.append((stamp, int(stamp_ns), np.array(T_odom_cam, np.float64), md, reinitialised))
                self._awaiting = [a for a in self._awaiting[-MAX_AWAITING_ODOMETRY:] if a[0] >= stamp - ODOMETRY_WAIT_S]
                self._complete_awaiting(odometry_at)
                return self._scale.estimate
            if T_odom_cam is None or T_odo is None:
                if reinitialised:
                    self._scale.reset("visual odometry re-initialised")
                return self._scale.estimate
            if odometry_at is not None:   # the older frames first (stamp order)
                self._awaiting = [a for a in self._awaiting if a[0] >= stamp - ODOMETRY_WAIT_S]
                self._complete_awaiting(odometry_at)
            self._awaiting.clear()
            return self._scale.add(stamp, T_odom_cam, T_odo, median_depth=md, reinitialised=reinitialised)
        # a placed window (pose-conditioned): window_scale is its re-estimated scale against the keyframes
        return self._scale.add(window_scale if T_odom_cam is not None else None, conditioned, reinitialised)

    def _complete_awaiting(self, odometry_at: Callable[[int], Optional[np.ndarray]]) -> None:
        """Add the waiting frames whose odometry is in TF now (stamp order); those older than the newest found one
        are given up (the odometry has a gap there)."""
        found = [odometry_at(a[1]) for a in self._awaiting]
        last = max((k for k, T in enumerate(found) if T is not None), default=-1)
        for (stamp, _, T_cam, md, reinit), T in zip(self._awaiting[:last + 1], found[:last + 1]):
            if T is not None:
                self._scale.add(stamp, T_cam, np.asarray(T, np.float64), median_depth=md, reinitialised=reinit)
        del self._awaiting[:last + 1]

    def reset(self, reason: str) -> None:
        """A new trajectory (new odometry frame and unit): the scale restarts."""
        self._awaiting.clear()
        if self._scale is not None:
            self._scale.reset(reason)
