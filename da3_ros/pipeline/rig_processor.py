"""``RigFrameProcessor``: one synchronised rig snapshot (C camera images) in, every camera's outputs and one rig
pose out (ROS-free; issue 14).

A rig window is the C images of the current snapshot plus those of the last k keyframe snapshots, in
snapshot-major order ``[kf_1 cam_0 .. cam_C-1, ..., current cam_0 .. cam_C-1]`` (N = C * (k + 1) views, the
model's N). Keyframes are rig snapshots: the :class:`~da3_ros.tracking.tracker.WindowTracker` runs on the
snapshots with a window of k + 1, fed the views of the *reference camera* (``cameras[0]``); the keyframe
images of every camera are kept here. So the tracker's odometry frame, unit and rejection gates are those of
the single-camera pipeline, and the reference camera's pose is the rig's pose (the node publishes the base
pose ``T_odom_cam0 @ inv(T_base_cam0)``).

Per camera ``c`` of the current snapshot: depth (window units times the window's factor, below), confidence,
the network camera (camera_info or the model's), its organized cloud in its optical frame, and its pose
``T_odom_cam_c = T_odom_cam0 @ T_cam0_camc`` with the window's predicted inter-camera pose (odometry units),
which places its keyframe cloud in the fused map.

Metric scale (``scale_source``):

* ``rig``: every window's scale from the rig's known extrinsics (``tracking.rig_scale.estimate_rig_scale`` on
  the predicted camera centres of the window's distinct snapshots against ``T_base_cam``, metres per window
  unit). A *trusted* window (state ``ok``) publishes its depth and points with its own scale. Its uncertainty is
  the larger of ``estimate_rig_scale``'s (from a noise model) and the scatter of the recent windows' measurements
  (``ConditionedScaleEstimator.spread``, from 5 windows on): a network noisier than the model makes windows
  ``scatter_too_large`` (above ``RigScaleConfig.max_rel_uncertainty``) instead of trusted. Each accepted window
  that the noise model trusts (``ok`` or ``scatter_too_large``) measures metres per odometry unit (``rig scale /
  tracker scale``); their robust centre (``ConditionedScaleEstimator`` over the last windows) scales poses, path
  and map. Windows whose rig estimate is not trusted (``baseline_too_short``, ``scatter_too_large``,
  ``inconsistent``, ``degenerate``) use that odometry-frame scale for their depth and say why on /diagnostics.
* ``rig_odometry``: as ``rig``, and the odometry frame's metres per unit is the inverse-variance fusion (in
  log) of the rig estimate and the wheel-odometry estimate of ``scale_source: odometry`` (reference camera
  poses against ``odometry_frame -> base_frame``; ``tracking.metric_scale.fuse_scale_estimates``), each alone
  while the other is unknown.
* ``odometry`` / ``none``: as the single-camera pipeline (``RobotOdometry`` on the reference camera).

Pose-conditioned models (``pose_source: tf``): each view's pose is ``T_odometry_base(snapshot) @ T_base_cam``
of its camera, so the current snapshot is conditioned on the rig's extrinsics and the keyframes on the TF
odometry at their stamps; the prediction is aligned back to them (``RobotOdometry.condition`` / ``align``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..backends.base import InferenceBackend
from ..geometry.camera import PinholeCamera
from ..geometry.transforms import extrinsics_to_T_world_cam, invert_transform
from ..tracking.conditioned_scale import ConditionedScaleConfig, ConditionedScaleEstimator
from ..tracking.metric_scale import ScaleEstimate, fuse_scale_estimates
from ..tracking.rig_scale import RigScaleConfig, RigScaleEstimate, estimate_rig_scale
from ..tracking.tracker import WindowTracker
from .frame_processor import DEFAULT_HFOV_DEG, FrameProcessor, ProcessedFrame, ProcessorConfig
from .map_fusion import MapUpdateCallback
from .network_input import NetworkInputMapping
from .robot_odometry import RobotOdometryConfig

__all__ = ["RIG_SCALE_SOURCES", "RIG_ONLY_SCALE_SOURCES", "ODOMETRY_SCALE_SOURCES", "RigCameraInput",
           "RigProcessedFrame", "RigFrameProcessor", "rig_window_layout"]

#: scale sources of a rig (``ProcessorConfig.scale_source``); ``none`` and ``odometry`` as for one camera
RIG_SCALE_SOURCES = ("none", "odometry", "rig", "rig_odometry")
#: the ones that need a rig, and the ones that read the robot odometry from TF
RIG_ONLY_SCALE_SOURCES = ("rig", "rig_odometry")
ODOMETRY_SCALE_SOURCES = ("odometry", "rig_odometry")


def rig_window_layout(views: int, num_cameras: int) -> int:
    """k + 1, the snapshots of a window of ``views`` = N views for ``num_cameras`` = C cameras (N = C * (k + 1),
    k >= 1 keyframe snapshots); ValueError naming the fix otherwise."""
    if num_cameras < 2:
        raise ValueError(f"a rig needs at least 2 cameras, got {num_cameras} (use the single image topic)")
    if views % num_cameras or views // num_cameras < 2:
        wanted = ", ".join(str(num_cameras * m) for m in (2, 3))
        raise ValueError(f"a rig of {num_cameras} cameras needs a window of N = {num_cameras} x (k + 1) views with "
                         f"k >= 1 keyframe snapshots (N = {wanted}, ...); the model has N = {views}: re-export it "
                         f"with --views {num_cameras * 2} (or more)")
    return views // num_cameras


@dataclass
class RigCameraInput:
    """One camera's frame of a rig snapshot: RGB uint8 (h, w, 3), its own stamp, camera_info (or None) and its
    mount ``T_base_cam`` (camera optical frame to base, metres; None when not known)."""

    rgb: np.ndarray
    stamp_ns: int
    camera: Optional[PinholeCamera] = None
    T_base_cam: Optional[np.ndarray] = None


@dataclass
class RigProcessedFrame:
    """Everything published for one rig snapshot. ``cameras[c]``: camera c's ``ProcessedFrame`` (camera
    resolution; ``T_odom_cam`` its pose); ``cameras[0]`` is the reference camera whose pose is the rig's
    (``metres_per_unit``, ``scale_estimate``, tracking fields: the rig's, on every camera)."""

    cameras: List[ProcessedFrame]
    rig_scale: Optional[RigScaleEstimate] = None      # this window's estimate from the rig's extrinsics
    depth_scaled_by: str = ""                         # "window rig scale" | "odometry-frame scale" | "none"
    events: list = field(default_factory=list)
    stage_seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def reference(self) -> ProcessedFrame:
        return self.cameras[0]


class RigFrameProcessor(FrameProcessor):
    """See the module docstring. ``num_cameras`` = C; the backend's N must be C * (k + 1) with k >= 1."""

    def __init__(self, backend: InferenceBackend, config: ProcessorConfig, num_cameras: int,
                 on_map_update: Optional[MapUpdateCallback] = None, rig_scale: Optional[RigScaleConfig] = None):
        self.num_cameras = int(num_cameras)
        self.snapshots = rig_window_layout(backend.views, self.num_cameras)
        source = str(config.scale_source).strip().lower()
        if source not in RIG_SCALE_SOURCES:
            raise ValueError(f"scale_source must be one of {' | '.join(RIG_SCALE_SOURCES)}, got {source!r}")
        self.rig_scale_source = source in RIG_ONLY_SCALE_SOURCES
        super().__init__(backend, config, on_map_update=on_map_update)
        if not self.tracking:
            raise ValueError("a camera rig needs a model that predicts camera poses (a multi-view DA3 variant); "
                             f"this one predicts poses: {self.capabilities.predicts_poses}")
        self.tracker = WindowTracker(config.tracker_config(metric=False, window_size=self.snapshots))
        self.rig_scale_config = rig_scale if rig_scale is not None else RigScaleConfig()
        self.rig_scale_fit = ConditionedScaleEstimator(ConditionedScaleConfig(measurement="trusted rig windows"))
        self.last_rig_scale: Optional[RigScaleEstimate] = None
        self.rig_windows = {"ok": 0, "baseline_too_short": 0, "scatter_too_large": 0, "inconsistent": 0,
                            "degenerate": 0, "no_mount": 0}
        self._mappings: List[Optional[NetworkInputMapping]] = [None] * self.num_cameras
        self._intrinsics_sources = ["none yet"] * self.num_cameras
        self._rig_images: Dict[int, np.ndarray] = {}

    # -- configuration -----------------------------------------------------------------------
    @staticmethod
    def _robot_config(config: ProcessorConfig) -> RobotOdometryConfig:
        source = str(config.scale_source).strip().lower()
        odometry = "odometry" if source in ODOMETRY_SCALE_SOURCES else "none"
        return RobotOdometryConfig(scale_source=odometry, pose_source=str(config.pose_source).strip().lower())

    @property
    def scale_expected(self) -> bool:
        return self.rig_scale_source or super().scale_expected

    @property
    def scale_estimate(self) -> Optional[ScaleEstimate]:
        """The odometry frame's metric scale (see the module docstring for the rule), None without a source."""
        robot = self.robot.scale_estimate if self.robot is not None else None
        if not self.rig_scale_source:
            return robot
        if robot is None:
            return self.rig_scale_fit.estimate
        return fuse_scale_estimates([self.rig_scale_fit.estimate, robot], ("rig", "odometry"))

    @property
    def metres_per_unit(self) -> Optional[float]:
        est = self.scale_estimate
        return est.scale if est is not None and est.known else None

    def reset(self, reason: str, keep_odom_frame: bool) -> None:
        super().reset(reason, keep_odom_frame)
        self._rig_images = {}
        if not keep_odom_frame:
            self.rig_scale_fit.reset(reason)

    def describe(self) -> dict:
        info = super().describe()
        info.pop("camera_resolution", None)
        info.pop("cropped_fraction", None)
        info["rig_cameras"] = self.num_cameras
        info["rig_window"] = f"{self.num_cameras} cameras x {self.snapshots} snapshots"
        for c, mapping in enumerate(self._mappings):
            if mapping is not None:
                info[f"camera{c}_resolution"] = f"{mapping.camera_width}x{mapping.camera_height}"
            info[f"camera{c}_intrinsics_source"] = self._intrinsics_sources[c]
        info["intrinsics_source"] = self._intrinsics_sources[0]
        if self.rig_scale_source:
            est = self.scale_estimate
            info["metric_scale"] = est.summary()
            info["metric_scale_m_per_unit"] = est.scale if est.known else "unknown"
            info["metric_scale_relative_uncertainty"] = est.relative_uncertainty if est.known else "unknown"
            info["rig_scale_windows"] = ", ".join(f"{k} {v}" for k, v in self.rig_windows.items())
            if self.last_rig_scale is not None:
                info["rig_scale_window"] = self.last_rig_scale.summary()
                info["rig_scale_state"] = self.last_rig_scale.state
        return info

    # ------------------------------------------------------------------------------------------
    def process_rig(self, frames: Sequence[RigCameraInput],
                    T_odometry_base: Optional[np.ndarray] = None) -> RigProcessedFrame:
        """One synchronised snapshot: ``frames[c]`` of camera c (camera order = ``cameras``); the reference
        camera's stamp is the snapshot's. ``T_odometry_base``: the robot odometry at that stamp (or None)."""
        C = self.num_cameras
        if len(frames) != C:
            raise ValueError(f"a snapshot of this rig has {C} camera frames, got {len(frames)}")
        for c, f in enumerate(frames):
            rgb = f.rgb
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
                raise ValueError(f"camera {c}: expected an RGB uint8 (h, w, 3) image, got {rgb.dtype} {rgb.shape}")
        events: list = []
        stages: Dict[str, float] = {}
        stamp_ns = int(frames[0].stamp_ns)
        reset = self._check_time(stamp_ns, events)
        t = time.perf_counter()
        nets, K_cams = [], []
        for c, f in enumerate(frames):
            h, w = f.rgb.shape[:2]
            self._mappings[c] = self._check_resolution(self._mappings[c], w, h, events, label=f"camera {c} image")
        for c, f in enumerate(frames):
            mapping = self._mappings[c]
            nets.append(mapping.image_to_network(f.rgb))
            K, self._intrinsics_sources[c] = self._camera_intrinsics(f.camera, f.rgb, mapping, events,
                                                                     label=f"camera {c} camera_info")
            K_cams.append(K)
        self.intrinsics_source = self._intrinsics_sources[0]
        mounts = [None if f.T_base_cam is None else np.asarray(f.T_base_cam, np.float64) for f in frames]
        snapshot_id = self._next_id
        self._next_id += 1
        robot = self.robot
        if robot is not None:
            if mounts[0] is not None:
                robot.set_base_camera(mounts[0])
            robot.add_frame(snapshot_id, T_odometry_base)
        self._rig_images[snapshot_id] = np.stack(nets)
        stages["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        ids = self.tracker.window_for(snapshot_id, stamp_ns * 1e-9, None)
        images = np.concatenate([self._rig_images[i] for i in ids])      # (N, h, w, 3) snapshot-major
        view_ids = [i for i in ids for _ in range(C)]
        conditioning = None
        if robot is not None and robot.pose_conditioned:
            K_views = None if any(K is None for K in K_cams) else np.stack(K_cams * len(ids))
            views_mounts = None if any(M is None for M in mounts) else np.stack(mounts * len(ids))
            conditioning = robot.condition(view_ids, K_views, views_mounts)
        prediction = self.backend.infer(images, conditioning.encoding if conditioning is not None else None)
        stages["inference"] = time.perf_counter() - t

        t = time.perf_counter()
        conditioned = False
        if conditioning is not None:
            prediction, conditioned, _ = robot.align(conditioning, prediction)
        cameras_net = self._rig_network_cameras(prediction, K_cams, len(ids))   # (N, 3, 3)
        ref_views = slice(0, None, C)   # the reference camera's view of every snapshot (a view, no copy)
        reference = replace(prediction, depth=prediction.depth[ref_views],
                            depth_conf=None if prediction.depth_conf is None else prediction.depth_conf[ref_views],
                            extrinsics=prediction.extrinsics[ref_views],
                            intrinsics=None if prediction.intrinsics is None else prediction.intrinsics[ref_views])
        frame_depth = self._track(ids, reference, cameras_net[ref_views], events)
        tracked = frame_depth.T_odom_cam is not None
        window_scale = frame_depth.window_scale if tracked else self.tracker.last_scale   # odom units / window unit
        T_window_cam = extrinsics_to_T_world_cam(np.asarray(prediction.extrinsics, np.float64))   # (N, 4, 4)
        last = (len(ids) - 1) * C
        rig_scale = self._window_rig_scale(ids, T_window_cam, prediction.depth[last:last + C], mounts)
        trusted = rig_scale is not None and rig_scale.trusted
        # the odometry frame's scale takes every window the noise model trusts (its robust centre averages a noisy
        # network's windows out), the depth only windows that are trusted against their recent scatter too
        measured = rig_scale is not None and rig_scale.state in ("ok", "scatter_too_large")
        if self.rig_scale_source:
            self.rig_scale_fit.add(window_scale / rig_scale.scale if measured and tracked else None, conditioned=True,
                                   reinitialised=frame_depth.reinitialised)
        median_depth = None
        if tracked:
            sub = frame_depth.depth[::4, ::4]   # for the pose covariances: every 16th pixel is plenty
            valid = sub[np.isfinite(sub) & (sub > 0)]
            median_depth = float(np.median(valid)) if valid.size else None
        scale_estimate = None
        if robot is not None:
            robot.keep_frames(list(self.tracker.keyframe_ids) + [snapshot_id])
            scale_estimate = robot.update_scale(snapshot_id, stamp_ns * 1e-9, frame_depth.T_odom_cam,
                                                frame_depth.window_scale, median_depth, frame_depth.reinitialised,
                                                conditioned)
        if self.rig_scale_source:
            scale_estimate = self.scale_estimate
        s = self.metres_per_unit
        self.tracking_state.on_frame(accepted=tracked, reinitialised=frame_depth.reinitialised,
                                     stamp=stamp_ns * 1e-9, reason=frame_depth.reason)
        # window units -> published unit: the window's own rig scale when trusted, else the odometry frame's
        if self.rig_scale_source and trusted:
            to_published, scaled_by = rig_scale.scale, "window rig scale"
        elif s is not None:
            to_published, scaled_by = window_scale * s, "odometry-frame scale"
        else:
            to_published, scaled_by = window_scale, "none"
        stages["alignment"] = time.perf_counter() - t

        keep = set(self.tracker.keyframe_ids)
        self._rig_images = {k: v for k, v in self._rig_images.items() if k in keep}
        outputs = []
        for c, f in enumerate(frames):
            v = last + c
            T_odom_cam = None
            if tracked:
                T_cam0_camc = invert_transform(T_window_cam[last]) @ T_window_cam[v]
                T_cam0_camc[:3, 3] *= window_scale
                T_odom_cam = frame_depth.T_odom_cam @ T_cam0_camc
            outputs.append(self._camera_output(c, f, prediction, v, cameras_net[v], to_published, T_odom_cam,
                                               frame_depth, reset, stages, events if c == 0 else [], s,
                                               scale_estimate, T_odometry_base, conditioned, median_depth))
        if self.map is not None and frame_depth.keyframe and tracked:
            t = time.perf_counter()
            units_per_published = window_scale / to_published    # the map is kept in odometry units
            for c, out in enumerate(outputs):
                if out.points is not None:
                    points_units = out.points * np.float32(units_per_published)
                    self.map.submit((snapshot_id, c), int(frames[c].stamp_ns), points_units, out.point_colours,
                                    out.T_odom_cam)
            stages["map"] = time.perf_counter() - t
        return RigProcessedFrame(cameras=outputs, rig_scale=rig_scale, depth_scaled_by=scaled_by, events=events,
                                 stage_seconds=stages)

    # ------------------------------------------------------------------------------------------
    def _rig_network_cameras(self, prediction, K_cams: List[Optional[np.ndarray]], snapshots: int) -> np.ndarray:
        """(N, 3, 3) float32 pixel-centre K per view: camera_info's of its camera, else the model's."""
        C = self.num_cameras
        out = np.empty((C * snapshots, 3, 3), np.float32)
        for v in range(C * snapshots):
            K = K_cams[v % C]
            if K is None and prediction.intrinsics is not None:
                K = PinholeCamera.from_da3_intrinsics(prediction.intrinsics[v], prediction.width, prediction.height).K
            if K is None:
                K = PinholeCamera.centred(self.backend.width, self.backend.height, DEFAULT_HFOV_DEG).K
            out[v] = K
        return out

    def _window_rig_scale(self, ids, T_window_cam: np.ndarray, current_depth: np.ndarray,
                          mounts: List[Optional[np.ndarray]]) -> Optional[RigScaleEstimate]:
        """The window's metres per window unit from its distinct snapshots' camera centres and the mounts."""
        if any(M is None for M in mounts):
            self.rig_windows["no_mount"] += 1
            self.last_rig_scale = None
            return None
        C = self.num_cameras
        first = sorted({i: j for j, i in reversed(list(enumerate(ids)))}.values())   # first view of each snapshot
        poses = np.stack([T_window_cam[j * C:(j + 1) * C] for j in first])        # (K, C, 4, 4)
        sub = current_depth[:, ::8, ::8]   # the scene depth only sets the noise model: every 64th pixel is plenty
        d = sub[np.isfinite(sub) & (sub > 0)]
        scene_depth = float(np.median(d)) if d.size else float("nan")
        try:
            est = estimate_rig_scale(poses, np.stack(mounts), scene_depth, self.rig_scale_config)
        except ValueError:
            self.rig_windows["degenerate"] += 1
            self.last_rig_scale = None
            return None
        spread = self.rig_scale_fit.spread()
        if est.state in ("ok", "baseline_too_short") and spread is not None and spread > est.relative_uncertainty:
            # the windows scatter more than the noise model says (a noisier network): trust that scatter instead
            noisy = spread > self.rig_scale_config.max_rel_uncertainty
            est = replace(est, relative_uncertainty=spread, rel_sigma_windows=spread,
                          state="scatter_too_large" if noisy else est.state)
        elif spread is not None:
            est = replace(est, rel_sigma_windows=spread)
        self.rig_windows[est.state] = self.rig_windows.get(est.state, 0) + 1
        self.last_rig_scale = est
        return est

    def _camera_output(self, c: int, frame: RigCameraInput, prediction, v: int, K_net: np.ndarray,
                       to_published: float, T_odom_cam, frame_depth, reset: bool, stages: dict, events: list,
                       s: Optional[float], scale_estimate, T_odometry_base, conditioned: bool,
                       median_depth) -> ProcessedFrame:
        t = time.perf_counter()
        depth, confidence, cam_intr = self._to_camera(
            self._mappings[c], prediction.depth[v] * np.float32(to_published),
            prediction.depth_conf[v] if prediction.depth_conf is not None else None, frame.camera,
            self._intrinsics_sources[c], K_net)
        stages[f"postprocess_camera{c}"] = time.perf_counter() - t
        out = ProcessedFrame(depth=depth, confidence=confidence, camera_intrinsics=cam_intr, T_odom_cam=T_odom_cam,
                             points=None, point_colours=None, keyframe=frame_depth.keyframe,
                             aligned=frame_depth.aligned, rejected=frame_depth.rejected,
                             reinitialised=frame_depth.reinitialised, reset=reset, events=events,
                             stage_seconds=stages if c == 0 else {}, metres_per_unit=s,
                             scale_estimate=scale_estimate, T_odometry_base=T_odometry_base, conditioned=conditioned,
                             tracking_status=self.tracking_status, tracking_stats=frame_depth.stats,
                             median_depth=median_depth)
        self._add_cloud(out, frame.rgb, stages, f"cloud_camera{c}")
        return out
