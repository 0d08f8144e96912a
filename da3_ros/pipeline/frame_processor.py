"""``FrameProcessor``: one camera frame in, everything the node publishes out (ROS-free).

Per frame: map the camera image to the fixed network input (aspect kept, centre crop), build the
window [last N-1 keyframes ..., newest frame], run the backend, align the window into the odometry
frame (``WindowTracker``), map depth/confidence back to camera resolution, build the organized point
cloud (camera optical frame) and, for keyframes, grow the fused map.

Units: any-view models give depth in *odometry units* (the first window's scale, ``depth_unit ==
"model"``); a window the tracker rejects is published with the last accepted scale and no pose.
Mono/metric variants (no cameras predicted) give per-frame depth with no pose: metric variants in
metres (``raw * f / 300`` with f from camera_info) when camera_info is known.

Stream events (returned in ``ProcessedFrame.events`` so the node can log and count them):
``resolution_change`` (window and keyframes reset, odometry frame kept), ``time_jump_back``
(e.g. a bag loop: trajectory and map reset), ``camera_info_size_mismatch`` (model intrinsics used),
``window_rejected``, ``reinitialised``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..backends.base import InferenceBackend
from ..camera_intrinsics import CameraIntrinsics
from ..tracking.keyframes import KeyframePolicyConfig
from ..tracking.tracker import TrackerConfig, WindowTracker
from ..tracking.window_alignment import AlignmentConfig
from .network_input import NetworkInputMapping
from .point_cloud import OrganizedCloudBuilder
from .voxel_map import VoxelMap

METRIC_CANONICAL_FOCAL = 300.0


@dataclass
class ProcessorConfig:
    window_size: int = 4
    keyframe_translation: float = 0.10
    keyframe_rotation_deg: float = 10.0
    keyframe_max_frames: int = 15
    keyframe_max_interval_s: float = 2.0
    alignment_min_inlier_ratio: float = 0.6
    alignment_max_scale_inconsistency: float = 1.15
    max_rejected_windows: int = 5
    reset_on_time_jump_back: bool = True
    publish_points: bool = True
    point_stride: int = 2
    confidence_threshold: float = 1.0
    min_depth: float = 0.05
    max_depth: float = 50.0
    publish_map_points: bool = False
    map_voxel_size: float = 0.05
    map_max_points: int = 200_000

    @classmethod
    def from_parameters(cls, get: Callable[[str], object]) -> "ProcessorConfig":
        kwargs = {}
        for name, value in cls.__dataclass_fields__.items():
            raw = get(name)
            kwargs[name] = type(value.default)(raw) if not isinstance(value.default, bool) else bool(raw)
        return cls(**kwargs)

    def tracker_config(self, metric: bool) -> TrackerConfig:
        alignment = AlignmentConfig(min_inlier_ratio=self.alignment_min_inlier_ratio,
                                    max_scale_inconsistency=self.alignment_max_scale_inconsistency)
        keyframes = KeyframePolicyConfig(
            translation_ratio=self.keyframe_translation, rotation_deg=self.keyframe_rotation_deg,
            max_frame_gap=self.keyframe_max_frames or None, max_time_gap_s=self.keyframe_max_interval_s or None)
        return TrackerConfig(window_size=self.window_size, metric=metric, keyframes=keyframes,
                             alignment=alignment, max_consecutive_rejections=self.max_rejected_windows)


@dataclass
class StreamEvent:
    name: str
    message: str


@dataclass
class ProcessedFrame:
    """Everything published for one input frame (camera resolution unless noted)."""

    depth: np.ndarray                       # (h, w) float32, NaN where the network did not look
    confidence: Optional[np.ndarray]        # (h, w) float32 or None
    camera_intrinsics: CameraIntrinsics     # intrinsics of ``depth`` (camera_info or the model's)
    T_odom_cam: Optional[np.ndarray]        # camera-to-odom 4x4 or None (rejected / no pose model)
    points: Optional[np.ndarray]            # (h', w', 3) float32 camera optical frame, NaN = rejected
    point_colours: Optional[np.ndarray]     # (h', w', 3) uint8
    valid_points: int = 0
    keyframe: bool = False
    aligned: bool = False
    rejected: bool = False
    reinitialised: bool = False
    reset: bool = False                     # the trajectory was reset before this frame
    map_points: Optional[np.ndarray] = None  # (M, 3) float32 odometry frame (keyframes only)
    map_colours: Optional[np.ndarray] = None
    events: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)


class FrameProcessor:
    def __init__(self, backend: InferenceBackend, config: ProcessorConfig):
        if config.window_size != backend.views:
            raise ValueError(f"window_size {config.window_size} does not match the model's window of "
                             f"{backend.views} views; re-export the model with --views {config.window_size} "
                             f"or set window_size: {backend.views}")
        self.backend = backend
        self.config = config
        self.metric = "metric" in backend.variant or "mono" in backend.variant
        # N = 1 (or a mono/metric model) cannot relate frames: per-frame depth, no pose
        self.tracking = backend.views >= 2 and not self.metric
        self.cloud = OrganizedCloudBuilder(config.point_stride, config.min_depth, config.max_depth,
                                           config.confidence_threshold)
        self.map = VoxelMap(config.map_voxel_size, config.map_max_points) if config.publish_map_points else None
        self.tracker = WindowTracker(config.tracker_config(metric=False)) if self.tracking else None
        self._mapping: Optional[NetworkInputMapping] = None
        self._images: dict[int, np.ndarray] = {}
        self._next_id = 0
        self._last_stamp_ns: Optional[int] = None
        self._last_scale = 1.0
        self.intrinsics_source = "none yet"
        self.resets = 0

    @property
    def depth_unit(self) -> str:
        if self.metric:
            return "m (metric variant, needs camera_info)"
        if not self.tracking:
            return "model units (per-frame scale: a window of 1 view has no odometry)"
        return "odometry units (scale of the first window)"

    def describe(self) -> dict:
        info = {"depth_unit": self.depth_unit, "intrinsics_source": self.intrinsics_source,
                "keyframes": len(self.tracker.keyframe_ids) if self.tracker else 0, "trajectory_resets": self.resets}
        if self._mapping is not None:
            info["camera_resolution"] = f"{self._mapping.camera_width}x{self._mapping.camera_height}"
            info["cropped_fraction"] = round(self._mapping.cropped_fraction, 4)
        if self.map is not None:
            info["map_points"] = len(self.map)
        return info

    def reset(self, reason: str, keep_odom_frame: bool) -> None:
        if self.tracker is not None:
            self.tracker.reset(reason, keep_odom_frame=keep_odom_frame)
        self._images.clear()
        if not keep_odom_frame:
            self.resets += 1
            self._last_scale = 1.0
            if self.map is not None:
                self.map.clear()

    # ------------------------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp_ns: int, camera: Optional[CameraIntrinsics]) -> ProcessedFrame:
        """rgb: camera image, uint8 (h, w, 3); stamp_ns: the image stamp; camera: latest camera_info."""
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
        self._images[frame_id] = net_rgb
        stages["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        if not self.tracking:
            ids = [frame_id] * self.backend.views
        else:
            ids = self.tracker.window_for(frame_id, stamp_ns * 1e-9)
        prediction = self.backend.infer(np.stack([self._images[i] for i in ids]))
        stages["inference"] = time.perf_counter() - t

        t = time.perf_counter()
        if K_net is not None and prediction.intrinsics is not None:
            prediction.intrinsics = np.broadcast_to(K_net.astype(np.float32), prediction.intrinsics.shape).copy()
        if not self.tracking or prediction.extrinsics is None:
            out = self._depth_only(prediction, K_net)
        else:
            out = self._track(ids, prediction, events)
        keep = set(self.tracker.keyframe_ids) if self.tracker is not None else set()
        self._images = {i: self._images[i] for i in keep if i in self._images}
        stages["alignment"] = time.perf_counter() - t
        depth_net, conf_net, K_pred, T_odom_cam, flags = out

        t = time.perf_counter()
        depth = mapping.map_to_camera(depth_net)
        confidence = mapping.map_to_camera(conf_net) if conf_net is not None else None
        if camera is not None and self.intrinsics_source == "camera_info":
            cam_intr = camera
        else:
            cam_intr = CameraIntrinsics(mapping.camera_width, mapping.camera_height,
                                        mapping.intrinsics_to_camera(K_pred))
        stages["postprocess"] = time.perf_counter() - t

        result = ProcessedFrame(depth=depth, confidence=confidence, camera_intrinsics=cam_intr,
                                T_odom_cam=T_odom_cam, points=None, point_colours=None, reset=reset,
                                events=events, stage_seconds=stages, **flags)
        if self.config.publish_points or (self.map is not None and flags["keyframe"]):
            t = time.perf_counter()
            result.points, result.point_colours, result.valid_points = self.cloud.build(
                depth, cam_intr.K, rgb, confidence)
            stages["cloud"] = time.perf_counter() - t
        if self.map is not None and flags["keyframe"] and T_odom_cam is not None:
            t = time.perf_counter()
            self.map.add_keyframe(frame_id, result.points, result.point_colours, T_odom_points=T_odom_cam)
            result.map_points, result.map_colours = self.map.points()
            stages["map"] = time.perf_counter() - t
        return result

    # ------------------------------------------------------------------------------------------
    def _check_stream(self, rgb: np.ndarray, stamp_ns: int, events: list) -> bool:
        h, w = rgb.shape[:2]
        reset = False
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns and self.config.reset_on_time_jump_back:
            events.append(StreamEvent("time_jump_back", f"image stamp went back by "
                                      f"{(self._last_stamp_ns - stamp_ns) * 1e-9:.3f} s (bag loop?): "
                                      "resetting window, trajectory and map"))
            self.reset("time_jump_back", keep_odom_frame=False)
            reset = True
        self._last_stamp_ns = stamp_ns
        if self._mapping is None or (self._mapping.camera_width, self._mapping.camera_height) != (w, h):
            if self._mapping is not None:
                events.append(StreamEvent("resolution_change", f"image size changed from "
                                          f"{self._mapping.camera_width}x{self._mapping.camera_height} to {w}x{h}: "
                                          "window reset (odometry frame kept)"))
                self.reset("resolution_change", keep_odom_frame=True)
            self._mapping = NetworkInputMapping(w, h, self.backend.width, self.backend.height)
        return reset

    def _network_intrinsics(self, camera, rgb, events) -> Optional[np.ndarray]:
        h, w = rgb.shape[:2]
        if camera is None:
            self.intrinsics_source = "model (no camera_info)"
            return None
        if (camera.width, camera.height) != (w, h):
            events.append(StreamEvent("camera_info_size_mismatch", f"camera_info is {camera.width}x"
                                      f"{camera.height} but the image is {w}x{h}: using the model's intrinsics"))
            self.intrinsics_source = "model (camera_info size mismatch)"
            return None
        self.intrinsics_source = "camera_info"
        return self._mapping.intrinsics_to_network(camera)

    def _depth_only(self, prediction, K_net):
        depth = prediction.depth[-1]
        if self.metric and K_net is not None:
            depth = depth * np.float32(0.5 * (K_net[0, 0] + K_net[1, 1]) / METRIC_CANONICAL_FOCAL)
        conf = prediction.depth_conf[-1] if prediction.depth_conf is not None else None
        if K_net is None:
            if prediction.intrinsics is not None:
                K_net = prediction.intrinsics[-1]
            else:   # no camera model at all: a 60 degree horizontal field of view, documented guess
                f = 0.5 * self.backend.width / np.tan(np.radians(30.0))
                K_net = np.array([[f, 0, (self.backend.width - 1) / 2], [0, f, (self.backend.height - 1) / 2],
                                  [0, 0, 1]])
        flags = dict(keyframe=False, aligned=False, rejected=False, reinitialised=False)
        return depth, conf, np.asarray(K_net, np.float64), None, flags

    def _track(self, ids, prediction, events):
        result = self.tracker.update(ids, prediction)
        flags = dict(keyframe=result.keyframe, aligned=result.aligned, rejected=result.rejected,
                     reinitialised=result.reinitialised)
        if result.rejected:
            events.append(StreamEvent("window_rejected", f"window rejected ({result.reason}): depth published "
                                      "with the last accepted scale, no pose"))
            depth = prediction.depth[-1] * np.float32(self._last_scale)
            conf = prediction.depth_conf[-1] if prediction.depth_conf is not None else None
            return depth, conf, np.asarray(prediction.intrinsics[-1], np.float64), None, flags
        if result.reinitialised:
            events.append(StreamEvent("reinitialised", f"trajectory re-initialised ({result.reason})"))
        self._last_scale = result.scale
        return result.depth, result.confidence, np.asarray(result.intrinsics, np.float64), result.T_odom_cam, flags
