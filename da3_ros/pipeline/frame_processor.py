"""``FrameProcessor``: one camera frame in, everything the node publishes out (ROS-free).

Per frame (``FrameProcessor.process``, one way, nothing calls back up): map the camera image to the fixed
network input (aspect kept, centre crop), register it with the tracker and take the window's images
[last N-1 keyframes ..., newest frame] from it (``WindowTracker`` owns the keyframe images), run the
backend, give the tracker the prediction and the window's network cameras (pixel-centre K, converted
once), which aligns the window into the odometry frame; the newest frame's depth is a ``FrameDepth``
(tracked, rejected or depth-only); map depth/confidence back to camera resolution, build the organized
point cloud (camera optical frame) and, for keyframes, grow the fused map: a ``ProcessedFrame``.

Units (``FrameProcessor.depth_unit``, decided from ``backend.capabilities``, never from the variant
name): models that predict poses give depth in *odometry units* (the first window's scale; with a window
of 1 view: per-frame model units); a window the tracker rejects is published with the last accepted scale
and no pose. Models without poses give per-frame depth with no pose: a metric-depth model in metres
(``raw * f / 300`` with f from camera_info) while camera_info is known, else its raw canonical metric
depth (metres only for a 300 px focal length: NOT metres); a mono model relative, unitless depth.

Robot odometry (``scale_source: odometry`` / ``pose_source: tf``, :class:`~.robot_odometry.RobotOdometry`):
``process`` takes the mount ``T_base_cam`` and the robot odometry pose ``T_odometry_base`` at the image stamp
(the node reads both from TF). Pose-conditioned models get each window's TF camera poses and their
prediction is aligned back to them; the metric scale (metres per odometry unit) is estimated per frame, and
once it is known the published depth, points and map are in metres (``ProcessedFrame.metres_per_unit``;
``T_odom_cam`` stays in odometry units, the node scales the poses; the map is kept in odometry units and
scaled on output, so a refined scale rescales it consistently). ``ProcessedFrame.tracking_status`` is the
tracking state (``tracking.tracking_state``) of tracking pipelines.

Stream events (returned in ``ProcessedFrame.events`` so the node can log and count them):
``resolution_change`` (window and keyframes reset, odometry frame kept), ``time_jump_back``
(e.g. a bag loop: trajectory and map reset), ``camera_info_size_mismatch`` (model intrinsics used),
``window_rejected``, ``reinitialised``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import numpy as np

from ..backends.base import InferenceBackend
from ..geometry.camera import PinholeCamera
from ..tracking.keyframes import KeyframePolicyConfig
from ..tracking.metric_scale import ScaleEstimate
from ..tracking.tracker import FrameResult, TrackerConfig, WindowTracker
from ..tracking.tracking_state import TrackingStateMachine, TrackingStatus
from ..tracking.window_alignment import AlignmentConfig
from .network_input import NetworkInputMapping
from .point_cloud import OrganizedCloudBuilder
from .robot_odometry import RobotOdometry, RobotOdometryConfig
from .map_fusion import MapFusionWorker, MapUpdateCallback
from .voxel_map import VoxelMap

METRIC_CANONICAL_FOCAL = 300.0
DEFAULT_HFOV_DEG = 60.0
"""Horizontal field of view assumed when neither camera_info nor the model gives intrinsics."""

# depth_unit strings (FrameProcessor.depth_unit; one per case, see the module docstring)
DEPTH_UNIT_ODOMETRY = "odometry units (scale of the first window)"
DEPTH_UNIT_MODEL_PER_FRAME = "model units (per-frame scale: a window of 1 view has no odometry)"
DEPTH_UNIT_METRES = "m"
DEPTH_UNIT_CANONICAL_METRIC = ("canonical metric, not metres (metres at a 300 px focal length; "
                               "needs camera_info for metres)")
DEPTH_UNIT_RELATIVE = "relative (per-frame, unitless)"
DEPTH_UNIT_SCALE_UNKNOWN = "odometry units (metric scale unknown yet)"


_KEYFRAMES = KeyframePolicyConfig()
_ALIGNMENT = AlignmentConfig()
_TRACKER = TrackerConfig()


@dataclass
class ProcessorConfig:
    """The pipeline's settings. Tracker defaults come from ``KeyframePolicyConfig`` / ``AlignmentConfig`` /
    ``TrackerConfig`` (one source); the node's parameter defaults come from these fields
    (da3_ros.node.parameters). ``window_size`` 0 = the backend's window."""

    window_size: int = 0
    keyframe_translation: float = _KEYFRAMES.translation_ratio
    keyframe_rotation_deg: float = _KEYFRAMES.rotation_deg
    keyframe_max_frames: int = _KEYFRAMES.max_frame_gap or 0          # 0 = off
    keyframe_max_interval_s: float = _KEYFRAMES.max_time_gap_s or 0.0  # 0 = off
    alignment_min_inlier_ratio: float = _ALIGNMENT.min_inlier_ratio
    alignment_max_scale_inconsistency: float = _ALIGNMENT.max_scale_inconsistency
    max_rejected_windows: int = _TRACKER.max_consecutive_rejections
    reset_on_time_jump_back: bool = True
    publish_points: bool = True
    point_stride: int = 2
    confidence_threshold: float = 1.0
    min_depth: float = 0.05
    max_depth: float = 50.0
    publish_map_points: bool = False
    map_voxel_size: float = 0.05
    map_max_points: int = 200_000
    scale_source: str = "none"      # none | odometry (RobotOdometry)
    pose_source: str = "none"       # none | tf

    @classmethod
    def from_parameters(cls, get: Callable[[str], object]) -> "ProcessorConfig":
        kwargs = {}
        for name, value in cls.__dataclass_fields__.items():
            raw = get(name)
            kwargs[name] = type(value.default)(raw) if not isinstance(value.default, bool) else bool(raw)
        return cls(**kwargs)

    #: fields a running processor takes over from a new config (``FrameProcessor.apply_runtime_config``)
    RUNTIME_FIELDS = ("publish_points", "point_stride", "confidence_threshold", "min_depth", "max_depth")

    def tracker_config(self, metric: bool, window_size: Optional[int] = None) -> TrackerConfig:
        """``window_size``: the backend's N (default: this config's, which must then be set)."""
        window_size = int(window_size or self.window_size)
        alignment = AlignmentConfig(min_inlier_ratio=self.alignment_min_inlier_ratio,
                                    max_scale_inconsistency=self.alignment_max_scale_inconsistency)
        keyframes = KeyframePolicyConfig(
            translation_ratio=self.keyframe_translation, rotation_deg=self.keyframe_rotation_deg,
            max_frame_gap=self.keyframe_max_frames or None, max_time_gap_s=self.keyframe_max_interval_s or None)
        return TrackerConfig(window_size=window_size, metric=metric, keyframes=keyframes,
                             alignment=alignment, max_consecutive_rejections=self.max_rejected_windows)


@dataclass
class StreamEvent:
    name: str
    message: str


@dataclass(frozen=True)
class FrameDepth:
    """The newest frame's depth at network resolution and what tracking said about it. Built by one of
    the named constructors: ``tracked`` (an accepted or re-initialised window: depth in odometry units,
    with pose), ``rejected_window`` (depth with the last accepted scale, no pose) or ``depth_only`` (no
    tracking: per-frame depth, no pose)."""

    depth: np.ndarray                       # (h, w) float32 at network resolution
    confidence: Optional[np.ndarray]        # (h, w) float32 or None
    K_net: np.ndarray                       # (3, 3) float64 network camera, pixel-centre convention
    T_odom_cam: Optional[np.ndarray] = None  # camera-to-odom 4x4 (tracked only)
    keyframe: bool = False
    aligned: bool = False
    rejected: bool = False
    reinitialised: bool = False
    window_scale: float = float("nan")       # window units -> odometry units (tracked only)
    stats: Optional[dict] = None             # the tracker's alignment stats (tracked only)
    reason: str = ""

    @classmethod
    def tracked(cls, result: FrameResult) -> "FrameDepth":
        """An accepted (aligned or re-initialised) window's newest frame, from the tracker's result."""
        return cls(result.depth, result.confidence, np.asarray(result.intrinsics, np.float64), result.T_odom_cam,
                   keyframe=result.keyframe, aligned=result.aligned, reinitialised=result.reinitialised,
                   window_scale=float(result.scale), stats=dict(result.stats), reason=result.reason)

    @classmethod
    def rejected_window(cls, result: FrameResult, prediction) -> "FrameDepth":
        """A rejected window's newest frame: the predicted depth times the last accepted scale
        (``result.scale``), no pose."""
        conf = prediction.depth_conf[-1] if prediction.depth_conf is not None else None
        return cls(prediction.depth[-1] * np.float32(result.scale), conf, np.asarray(result.intrinsics, np.float64),
                   rejected=True, reason=result.reason)

    @classmethod
    def depth_only(cls, depth: np.ndarray, confidence: Optional[np.ndarray], K_net: np.ndarray) -> "FrameDepth":
        """Per-frame depth without tracking (N = 1 or a model without poses): no pose, no keyframe."""
        return cls(depth, confidence, np.asarray(K_net, np.float64))


@dataclass
class ProcessedFrame:
    """Everything published for one input frame (camera resolution unless noted)."""

    depth: np.ndarray                       # (h, w) float32, NaN where the network did not look
    confidence: Optional[np.ndarray]        # (h, w) float32 or None
    camera_intrinsics: PinholeCamera        # camera of ``depth`` (camera_info or the model's), pixel centres
    T_odom_cam: Optional[np.ndarray]        # camera-to-odom 4x4 or None (rejected / no pose model)
    points: Optional[np.ndarray]            # (h', w', 3) float32 camera optical frame, NaN = rejected
    point_colours: Optional[np.ndarray]     # (h', w', 3) uint8
    valid_points: int = 0
    keyframe: bool = False
    aligned: bool = False
    rejected: bool = False
    reinitialised: bool = False
    reset: bool = False                     # the trajectory was reset before this frame
    events: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)
    # robot odometry (None without it): metres per odometry unit when known (depth / points / map are then
    # metres), the scale estimate, the odometry pose given for this frame, whether the window was conditioned
    metres_per_unit: Optional[float] = None
    scale_estimate: Optional[ScaleEstimate] = None
    T_odometry_base: Optional[np.ndarray] = None
    conditioned: bool = False
    tracking_status: Optional[TrackingStatus] = None
    tracking_stats: Optional[dict] = None   # the tracker's alignment stats of an accepted window
    median_depth: Optional[float] = None    # of the accepted frame, odometry units


class FrameProcessor:
    def __init__(self, backend: InferenceBackend, config: ProcessorConfig,
                 on_map_update: Optional[MapUpdateCallback] = None):
        """``on_map_update(stamp_ns, points, colours)``: called on the map-fusion thread after each fused
        keyframe (odometry frame, read-only views valid during the call), with ``publish_map_points``."""
        if config.window_size and config.window_size != backend.views:
            raise ValueError(f"window_size {config.window_size} does not match the model's window of "
                             f"{backend.views} views; re-export the model with --views {config.window_size} "
                             f"or set window_size: 0 (= the model's)")
        self.backend = backend
        self.config = config
        self.capabilities = backend.capabilities
        self.metric = self.capabilities.metric_depth
        # N = 1, or a model that predicts no poses (mono/metric), cannot relate frames: per-frame depth, no pose
        self.tracking = backend.views >= 2 and self.capabilities.predicts_poses
        self.cloud = OrganizedCloudBuilder(config.point_stride, config.min_depth, config.max_depth,
                                           config.confidence_threshold)
        # the fused map grows on a thread of its own: a keyframe costs the inference worker one hand-over
        self._on_map_update = on_map_update
        self.map = (MapFusionWorker(VoxelMap(config.map_voxel_size, config.map_max_points), self._map_updated)
                    if config.publish_map_points else None)
        self.tracker = (WindowTracker(config.tracker_config(metric=False, window_size=backend.views))
                        if self.tracking else None)
        robot_config = self._robot_config(config)
        if robot_config.active and not self.tracking:
            raise ValueError("scale_source: odometry / pose_source: tf need a model that predicts camera poses with "
                             f"a window of >= 2 views (this one: {backend.views} view(s), predicts poses: "
                             f"{self.capabilities.predicts_poses})")
        pose_conditioned = bool(getattr(backend, "pose_conditioned", False))
        self.robot = (RobotOdometry(robot_config, pose_conditioned=pose_conditioned,
                                    network_hw=(backend.height, backend.width))
                      if robot_config.active or pose_conditioned else None)
        self.tracking_state = TrackingStateMachine() if self.tracking else None
        self._mapping: Optional[NetworkInputMapping] = None
        self._next_id = 0
        self._last_stamp_ns: Optional[int] = None
        self.intrinsics_source = "none yet"
        self.resets = 0

    @staticmethod
    def _robot_config(config: "ProcessorConfig") -> RobotOdometryConfig:
        """What ``RobotOdometry`` does for this configuration (the rig processor maps its scale sources)."""
        return RobotOdometryConfig(scale_source=str(config.scale_source).strip().lower(),
                                   pose_source=str(config.pose_source).strip().lower())

    @property
    def scale_expected(self) -> bool:
        """A metric scale source is configured (outputs become metres once it is known)."""
        return self.robot is not None and self.robot.config.scale_expected

    @property
    def metres_per_unit(self) -> Optional[float]:
        """Metres per odometry unit once a configured scale source knows it, else None."""
        return self.robot.metres_per_unit if self.robot is not None else None

    @property
    def tracking_status(self) -> Optional[TrackingStatus]:
        return self.tracking_state.status if self.tracking_state is not None else None

    @property
    def depth_unit(self) -> str:
        """The unit of the published depth / points (true for the latest frame; shown on /diagnostics)."""
        if self.scale_expected:
            return DEPTH_UNIT_METRES if self.metres_per_unit is not None else DEPTH_UNIT_SCALE_UNKNOWN
        if self.tracking:
            return DEPTH_UNIT_ODOMETRY
        if self.capabilities.predicts_poses:
            return DEPTH_UNIT_MODEL_PER_FRAME
        if self.metric:
            return DEPTH_UNIT_METRES if self.intrinsics_source == "camera_info" else DEPTH_UNIT_CANONICAL_METRIC
        return DEPTH_UNIT_RELATIVE

    def apply_runtime_config(self, config: "ProcessorConfig") -> None:
        """Take over ``ProcessorConfig.RUNTIME_FIELDS`` (point filter, publish_points) from ``config``; call
        between frames (the node's worker does, before each frame)."""
        changes = {name: getattr(config, name) for name in ProcessorConfig.RUNTIME_FIELDS
                   if getattr(config, name) != getattr(self.config, name)}
        if not changes:
            return
        self.config = replace(self.config, **changes)
        self.cloud = OrganizedCloudBuilder(self.config.point_stride, self.config.min_depth, self.config.max_depth,
                                           self.config.confidence_threshold)

    def describe(self) -> dict:
        info = {"depth_unit": self.depth_unit, "intrinsics_source": self.intrinsics_source,
                "keyframes": len(self.tracker.keyframe_ids) if self.tracker else 0, "trajectory_resets": self.resets}
        if self._mapping is not None:
            info["camera_resolution"] = f"{self._mapping.camera_width}x{self._mapping.camera_height}"
            info["cropped_fraction"] = round(self._mapping.cropped_fraction, 4)
        if self.map is not None:
            info.update(self.map.stats())
        status = self.tracking_status
        if status is not None:
            info.update(tracking_state=status.state, tracking_reason=status.reason,
                        tracking_lost_episodes=status.lost_episodes, tracking_lost_frames=status.lost_frames,
                        tracking_reinitialisations=status.reinitialisations, tracking_resets=status.resets)
        if self.robot is not None:
            est = self.robot.scale_estimate
            if est is not None:
                info["metric_scale"] = est.summary()
                info["metric_scale_m_per_unit"] = est.scale if est.known else "unknown"
                info["metric_scale_relative_uncertainty"] = (est.relative_uncertainty if est.known else "unknown")
            if self.robot.pose_conditioned:
                info["windows_conditioned"] = self.robot.windows_conditioned
                info["windows_unconditioned"] = self.robot.windows_unconditioned
                info["conditioning"] = self.robot.last_conditioning_reason
                if self.robot.last_pose_residual is not None:
                    info["pose_residual_m"] = round(self.robot.last_pose_residual, 6)
        return info

    def _map_updated(self, stamp_ns: int, points: np.ndarray, colours: Optional[np.ndarray]) -> None:
        """Map thread: the fused map (odometry units) in metres once the metric scale is known, to the caller."""
        if self._on_map_update is None:
            return
        s = self.metres_per_unit
        self._on_map_update(stamp_ns, points if s is None else points * np.float32(s), colours)

    def close(self) -> None:
        """Finish fusing the queued keyframes and stop the map thread. Idempotent."""
        if self.map is not None:
            self.map.close()

    def reset(self, reason: str, keep_odom_frame: bool) -> None:
        """``keep_odom_frame=False``: a new trajectory (odometry frame, unit, scale, map, tracking state)."""
        if self.tracker is not None:
            self.tracker.reset(reason, keep_odom_frame=keep_odom_frame)
        if not keep_odom_frame:
            self.resets += 1
            if self.map is not None:
                self.map.clear()
            if self.robot is not None:
                self.robot.reset(reason)
            if self.tracking_state is not None:
                self.tracking_state.reset(reason)

    # ------------------------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp_ns: int, camera: Optional[PinholeCamera],
                T_base_cam: Optional[np.ndarray] = None,
                T_odometry_base: Optional[np.ndarray] = None) -> ProcessedFrame:
        """rgb: camera image, uint8 (h, w, 3); stamp_ns: the image stamp; camera: latest camera_info;
        robot odometry (used with ``scale_source`` / ``pose_source``): ``T_base_cam`` the static mount (metres),
        ``T_odometry_base`` the robot odometry pose at the image stamp (None: not available for this frame)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
            raise ValueError(f"expected an RGB uint8 (h, w, 3) image, got {rgb.dtype} {rgb.shape}")
        events: list[StreamEvent] = []
        stages: dict[str, float] = {}
        reset = self._check_stream(rgb, stamp_ns, events)
        t = time.perf_counter()
        mapping = self._mapping
        net_rgb = mapping.image_to_network(rgb)
        K_net = self._network_intrinsics(camera, rgb, events)
        frame_id = self._next_id
        self._next_id += 1
        robot = self.robot
        if robot is not None:
            if T_base_cam is not None:
                robot.set_base_camera(T_base_cam)
            robot.add_frame(frame_id, T_odometry_base)
        stages["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        if self.tracking:
            ids = self.tracker.window_for(frame_id, stamp_ns * 1e-9, net_rgb)
            images = self.tracker.window_images(ids)
        else:
            ids, images = None, np.stack([net_rgb] * self.backend.views)
        conditioning = robot.condition(ids, K_net) if robot is not None and robot.pose_conditioned else None
        prediction = self.backend.infer(images, conditioning.encoding if conditioning is not None else None)
        stages["inference"] = time.perf_counter() - t

        t = time.perf_counter()
        conditioned = False
        if conditioning is not None:
            prediction, conditioned, _ = robot.align(conditioning, prediction)
        cameras_net = self._network_cameras(prediction, K_net)
        if not self.tracking or prediction.extrinsics is None:
            frame_depth = self._depth_only(prediction, K_net, cameras_net)
        else:
            frame_depth = self._track(ids, prediction, cameras_net, events)
        median_depth = None
        if frame_depth.T_odom_cam is not None:
            valid = frame_depth.depth[np.isfinite(frame_depth.depth) & (frame_depth.depth > 0)]
            median_depth = float(np.median(valid)) if valid.size else None
        scale_estimate, s = None, None
        if robot is not None:
            robot.keep_frames(list(self.tracker.keyframe_ids) + [frame_id])
            scale_estimate = robot.update_scale(frame_id, stamp_ns * 1e-9, frame_depth.T_odom_cam,
                                                frame_depth.window_scale, median_depth, frame_depth.reinitialised,
                                                conditioned)
            s = robot.metres_per_unit
        if self.tracking_state is not None:
            self.tracking_state.on_frame(accepted=frame_depth.T_odom_cam is not None,
                                         reinitialised=frame_depth.reinitialised, stamp=stamp_ns * 1e-9,
                                         reason=frame_depth.reason)
        if s is not None:
            frame_depth = replace(frame_depth, depth=frame_depth.depth * np.float32(s))
        stages["alignment"] = time.perf_counter() - t

        t = time.perf_counter()
        depth, confidence, cam_intr = self._to_camera(mapping, frame_depth.depth, frame_depth.confidence, camera,
                                                      self.intrinsics_source, frame_depth.K_net)
        stages["postprocess"] = time.perf_counter() - t

        T_odom_cam = frame_depth.T_odom_cam
        result = ProcessedFrame(depth=depth, confidence=confidence, camera_intrinsics=cam_intr,
                                T_odom_cam=T_odom_cam, points=None, point_colours=None,
                                keyframe=frame_depth.keyframe, aligned=frame_depth.aligned,
                                rejected=frame_depth.rejected, reinitialised=frame_depth.reinitialised,
                                reset=reset, events=events, stage_seconds=stages, metres_per_unit=s,
                                scale_estimate=scale_estimate, T_odometry_base=T_odometry_base,
                                conditioned=conditioned, tracking_status=self.tracking_status,
                                tracking_stats=frame_depth.stats, median_depth=median_depth)
        self._add_cloud(result, rgb, stages, "cloud")
        if self.map is not None and result.keyframe and T_odom_cam is not None:
            t = time.perf_counter()
            # the map is kept in odometry units (a refined scale rescales it consistently); the map thread's
            # output is scaled to metres on the way out (_map_updated)
            points_units = result.points if s is None else result.points * np.float32(1.0 / s)
            self.map.submit(frame_id, stamp_ns, points_units, result.point_colours, T_odom_cam)
            stages["map"] = time.perf_counter() - t   # the hand-over; fusing is timed on the map thread
        return result

    @staticmethod
    def _to_camera(mapping: NetworkInputMapping, depth_net: np.ndarray, confidence_net: Optional[np.ndarray],
                   camera: Optional[PinholeCamera], intrinsics_source: str, K_net: np.ndarray):
        """(depth, confidence, camera) at camera resolution from the network's: camera_info's camera when it is
        the intrinsics source, else the network camera ``K_net`` mapped back."""
        depth = mapping.map_to_camera(depth_net)
        confidence = mapping.map_to_camera(confidence_net) if confidence_net is not None else None
        if camera is not None and intrinsics_source == "camera_info":
            return depth, confidence, camera
        return depth, confidence, mapping.network_to_camera(
            PinholeCamera(mapping.net_width, mapping.net_height, np.asarray(K_net, np.float64)))

    def _add_cloud(self, result: ProcessedFrame, rgb: np.ndarray, stages: dict, stage: str) -> None:
        """The organized cloud of ``result`` (camera optical frame) when points are published or the map takes
        this keyframe."""
        if self.config.publish_points or (self.map is not None and result.keyframe):
            t = time.perf_counter()
            result.points, result.point_colours, result.valid_points = self.cloud.build(
                result.depth, result.camera_intrinsics, rgb, result.confidence)
            stages[stage] = time.perf_counter() - t

    # ------------------------------------------------------------------------------------------
    def _check_stream(self, rgb: np.ndarray, stamp_ns: int, events: list) -> bool:
        reset = self._check_time(stamp_ns, events)
        h, w = rgb.shape[:2]
        self._mapping = self._check_resolution(self._mapping, w, h, events)
        return reset

    def _check_time(self, stamp_ns: int, events: list) -> bool:
        """A stamp before the last one (a bag loop): reset trajectory and map (``reset_on_time_jump_back``)."""
        reset = False
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns and self.config.reset_on_time_jump_back:
            events.append(StreamEvent("time_jump_back", f"image stamp went back by "
                                      f"{(self._last_stamp_ns - stamp_ns) * 1e-9:.3f} s (bag loop?): "
                                      "resetting window, trajectory and map"))
            self.reset("time_jump_back", keep_odom_frame=False)
            reset = True
        self._last_stamp_ns = stamp_ns
        return reset

    def _check_resolution(self, mapping: Optional[NetworkInputMapping], w: int, h: int, events: list,
                          label: str = "image") -> NetworkInputMapping:
        """The network input mapping for a w x h camera image; a size change resets the window (odometry
        frame kept)."""
        if mapping is not None and (mapping.camera_width, mapping.camera_height) == (w, h):
            return mapping
        if mapping is not None:
            events.append(StreamEvent("resolution_change", f"{label} size changed from "
                                      f"{mapping.camera_width}x{mapping.camera_height} to {w}x{h}: "
                                      "window reset (odometry frame kept)"))
            self.reset("resolution_change", keep_odom_frame=True)
        return NetworkInputMapping(w, h, self.backend.width, self.backend.height)

    def _network_intrinsics(self, camera: Optional[PinholeCamera], rgb, events) -> Optional[np.ndarray]:
        """camera_info's K in network-input pixels (pixel-centre convention), or None (use the model's)."""
        K, self.intrinsics_source = self._camera_intrinsics(camera, rgb, self._mapping, events)
        return K

    @staticmethod
    def _camera_intrinsics(camera: Optional[PinholeCamera], rgb, mapping: NetworkInputMapping, events,
                           label: str = "camera_info") -> tuple[Optional[np.ndarray], str]:
        """(camera_info's K in network pixels or None, the intrinsics source said on /diagnostics)."""
        h, w = rgb.shape[:2]
        if camera is None:
            return None, "model (no camera_info)"
        if (camera.width, camera.height) != (w, h):
            events.append(StreamEvent("camera_info_size_mismatch", f"{label} is {camera.width}x"
                                      f"{camera.height} but the image is {w}x{h}: using the model's intrinsics"))
            return None, "model (camera_info size mismatch)"
        return mapping.camera_to_network(camera).K, "camera_info"

    def _network_cameras(self, prediction, K_net: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """(N, 3, 3) float32 the window's network cameras in the project's pixel-centre convention:
        camera_info's (``K_net``) when known, else the model's converted from DA3's pixel-corner
        convention -- the one place where predicted intrinsics enter the pipeline (the tracker, clouds and
        depth_info use these; the prediction itself is not changed). None: neither is known."""
        if K_net is not None:
            return np.broadcast_to(np.asarray(K_net, np.float32), (self.backend.views, 3, 3))
        if prediction.intrinsics is None:
            return None
        return np.stack([PinholeCamera.from_da3_intrinsics(k, prediction.width, prediction.height).K
                         for k in prediction.intrinsics]).astype(np.float32)

    def _depth_only(self, prediction, K_net: Optional[np.ndarray], cameras_net: Optional[np.ndarray]) -> FrameDepth:
        depth = prediction.depth[-1]
        if self.metric and K_net is not None:
            depth = depth * np.float32(0.5 * (K_net[0, 0] + K_net[1, 1]) / METRIC_CANONICAL_FOCAL)
        conf = prediction.depth_conf[-1] if prediction.depth_conf is not None else None
        if K_net is not None:
            K = K_net
        elif cameras_net is not None:
            K = cameras_net[-1]
        else:   # no camera model at all: centred, 60 degree horizontal field of view, documented guess
            K = PinholeCamera.centred(self.backend.width, self.backend.height, DEFAULT_HFOV_DEG).K
        return FrameDepth.depth_only(depth, conf, K)

    def _track(self, ids, prediction, cameras_net: Optional[np.ndarray], events: list) -> FrameDepth:
        result = self.tracker.update(ids, prediction, cameras_net)
        if result.rejected:
            events.append(StreamEvent("window_rejected", f"window rejected ({result.reason}): depth published "
                                      "with the last accepted scale, no pose"))
            return FrameDepth.rejected_window(result, prediction)
        if result.reinitialised:
            events.append(StreamEvent("reinitialised", f"trajectory re-initialised ({result.reason})"))
        return FrameDepth.tracked(result)
