"""``WindowProcessor``: one snapshot of C >= 1 cameras in, every camera's outputs and one body pose out (ROS-free).

A single camera is a rig of one. A window is the C images of the current snapshot plus those of the last k
keyframe snapshots, snapshot-major ``[kf_1 cam_0 .. cam_C-1, ..., current cam_0 .. cam_C-1]`` (N = C * (k + 1)
views, the model's N; one camera: k = N - 1). One path per snapshot (``process``), nothing calls back up:

1. ``_check_stream``: a stamp going back resets trajectory and map, a new image size the window
   (``CameraStream.update_size``);
2. ``_prepare``: a raw image is rectified into the pinhole camera of its camera_info's P (``CameraStream.rectify``;
   everything after, outputs included, is in that rectified geometry), then each camera's image goes to the
   network input (``NetworkInputMapping``: aspect kept, centre crop) and its camera_info K to network pixels;
3. ``_window_images``: the tracker registers the snapshot (``WindowTracker`` owns the keyframe snapshots' images)
   and gives the window; ``_conditioning``: a pose-conditioned model's TF poses per view (``RobotOdometry``);
4. ``InferenceBackend.infer``, then ``RobotOdometry.align`` back to the given poses;
5. ``_network_cameras``: each view's pixel-centre K (camera_info's, else the model's converted exactly once,
   else a centred ``DEFAULT_HFOV_DEG`` guess);
6. ``_track``: the reference camera's views (``cameras[0]``) go to ``WindowTracker.update``, which aligns the
   window into the odometry frame (its pose is the body's); ``_scale``: the metric scale
   (``RobotOdometry.update_scale``, ``RigWindowScale``: see :mod:`.scale_source`), the tracking state, and the
   factor from window units to the published unit; without tracking (N = 1 or a model without poses)
   ``_untracked`` gives per-frame depth;
7. ``_camera_outputs``: per camera, depth / confidence / camera back at camera resolution
   (``CameraStream.to_camera``), its pose ``T_odom_cam_c = T_odom_cam0 @ T_cam0_camc`` (the window's predicted
   inter-camera pose, odometry units) and its organized cloud (``OrganizedCloudBuilder``);
8. ``_submit_keyframe``: a keyframe's clouds go to the map thread (``MapFusionWorker``, odometry units).

Units: the published depth / points / map are in ``depth_unit`` (:mod:`.depth_unit`): odometry units (the first
window's scale) for models that predict poses, metres once a configured metric scale is known (then the window's
own rig scale when that window's estimate is trusted, else the odometry frame's). A rejected window is published
with the last accepted scale and no pose. Poses stay in odometry units (``WindowOutcome.metres_per_unit``: the
node scales them); the map is kept in odometry units and scaled on output, so a refined scale rescales it.
**Once metres, always metres**: when the scale estimate becomes unknown again after it was known (its
uncertainty crossed the limit), the outputs stay in metres with the last known scale (``scaled_by`` "last known
scale", its relative uncertainty at least the estimator's limit, for the covariances); only a new trajectory
(full reset) forgets it.

Pose-conditioned models (``pose_source: tf``): a window aligned to its TF poses is the official answer, in
metres in the robot's odometry frame, so it is **placed by SE(3)** (``WindowTracker.place``, ``_place``), never
rescaled: published depth = the aligned depth, pose = the TF pose chain (``T_odom_cam`` in metres,
``metres_per_unit`` 1), map in metres; depth_unit "m" from the first such window on, for good. A window whose
given centres coincide (standing robot, the padded first windows: the official alignment has no answer) is
placed by its TF pose and publishes NaN depth (no value in any unit; ``windows_unconditioned``); a snapshot
without an odometry pose is dropped (``WindowDropped``, ``no_odometry``). The re-estimated scale of a placed
window against the shared keyframes is measured (``ConditionedScaleEstimator``), never applied: its spread is
the relative uncertainty of the published scale (covariances, /diagnostics).

Stream events (``WindowOutcome.events``, logged and counted by the node): ``resolution_change`` (window and
keyframes reset, odometry frame kept), ``time_jump_back`` (e.g. a bag loop: trajectory and map reset),
``camera_info_size_mismatch`` (model intrinsics used), ``image_cropped`` (a camera loses more than 5 % of its image
to the network input's crop: the export that fits is named; ``describe()``'s ``crop_warning`` holds it),
``window_rejected``, ``reinitialised``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import List, Optional, Sequence

import numpy as np

from ..backends.base import InferenceBackend
from ..geometry.camera import DEFAULT_HFOV_DEG, PinholeCamera
from ..geometry.transforms import extrinsics_to_T_world_cam, invert_transform
from ..tracking.metric_scale import KNOWN, ScaleEstimate, fuse_scale_estimates
from ..tracking.rig_scale import RigScaleConfig, RigScaleEstimate
from ..tracking.tracker import FrameResult, WindowTracker
from ..tracking.tracking_outcome import TrackingOutcome
from ..tracking.tracking_state import TrackingStateMachine, TrackingStatus
from .camera_stream import CameraFrame, CameraStream, check_rgb
from .depth_unit import METRIC_CANONICAL_FOCAL, depth_unit
from .loop_closure import LoopClosure
from .map_fusion import MapFusionWorker, MapUpdateCallback
from .point_cloud import OrganizedCloudBuilder
from .processor_config import ProcessorConfig
from .rig_window_scale import RigSnapshotTiming, RigWindowScale
from .robot_odometry import RobotOdometry, RobotOdometryConfig
from .scale_source import source_problems
from .voxel_map import VoxelMap
from .window_outcome import CameraOutput, StreamEvent, WindowOutcome

__all__ = ["WindowProcessor", "window_layout"]


def window_layout(views: int, num_cameras: int) -> int:
    """k + 1, the snapshots of a window of ``views`` = N views for ``num_cameras`` = C cameras: N for one camera;
    a rig needs N = C * (k + 1) with k >= 1 keyframe snapshots (ValueError naming the fix otherwise)."""
    if num_cameras < 1:
        raise ValueError(f"a window needs at least 1 camera, got {num_cameras}")
    if num_cameras == 1:
        return int(views)
    if views % num_cameras or views // num_cameras < 2:
        wanted = ", ".join(str(num_cameras * m) for m in (2, 3))
        raise ValueError(f"a rig of {num_cameras} cameras needs a window of N = {num_cameras} x (k + 1) views with "
                         f"k >= 1 keyframe snapshots (N = {wanted}, ...); the model has N = {views}: re-export it "
                         f"with --views {num_cameras * 2} (or more)")
    return views // num_cameras


@dataclass(frozen=True)
class _WindowScale:
    """What ``_scale`` decided for a tracked window (internal to one ``process`` call)."""

    to_published: float           # window units -> published unit
    scaled_by: str
    metres_per_unit: Optional[float]
    estimate: Optional[ScaleEstimate]
    rig: Optional[RigScaleEstimate]
    median_depth: Optional[float]


class WindowProcessor:
    """See the module docstring. ``num_cameras`` = C (camera order = the rig's; ``cameras[0]`` is the reference);
    ``on_map_update(stamp_ns, points, colours)``: called on the map-fusion thread after each fused keyframe
    (odometry frame, published unit; read-only views valid during the call), with ``publish_map_points``."""

    def __init__(self, backend: InferenceBackend, config: ProcessorConfig, num_cameras: int = 1,
                 on_map_update: Optional[MapUpdateCallback] = None, rig_scale: Optional[RigScaleConfig] = None):
        if config.window_size and config.window_size != backend.views:
            raise ValueError(f"window_size {config.window_size} does not match the model's window of "
                             f"{backend.views} views; re-export the model with --views {config.window_size} "
                             f"or set window_size: 0 (= the model's)")
        self.num_cameras = int(num_cameras)
        self.snapshots = window_layout(backend.views, self.num_cameras)
        problems = source_problems(config.scale_source, config.pose_source, self.num_cameras)
        if problems:
            raise ValueError("; ".join(problems))
        self.backend = backend
        self.config = config
        self.capabilities = backend.capabilities
        self.metric = self.capabilities.metric_depth
        # N = 1, or a model that predicts no poses (mono/metric), cannot relate frames: per-frame depth, no pose
        self.tracking = backend.views >= 2 and self.capabilities.predicts_poses
        if self.num_cameras > 1 and not self.tracking:
            raise ValueError("a camera rig needs a model that predicts camera poses (a multi-view DA3 variant); "
                             f"this one predicts poses: {self.capabilities.predicts_poses}")
        self.cloud = OrganizedCloudBuilder(config.point_stride, config.min_depth, config.max_depth,
                                           config.confidence_threshold)
        # the fused map grows on a thread of its own: a keyframe costs the inference worker one hand-over
        self._on_map_update = on_map_update
        # loop closure: the map keeps each keyframe's sub-map so that optimised poses rebuild it
        self.loop = LoopClosure(config, backend, self.num_cameras)   # loads map_load_directory (MapFormatError)
        self.map = (MapFusionWorker(VoxelMap(config.map_voxel_size, config.map_max_points), self._map_updated,
                                    keep_submaps=self.loop.possible) if config.publish_map_points else None)
        self.loop.map = self.map
        self.tracker = (WindowTracker(config.tracker_config(metric=False, window_size=self.snapshots))
                        if self.tracking else None)
        self.robot = self._robot_odometry(backend, config)
        # pose-conditioned windows are placed by SE(3) (already metres in the odometry frame), never rescaled
        self.placed = self.robot is not None and self.robot.pose_conditioned
        self._placed_metres = False               # a placed window was aligned to its TF poses (metres for good)
        self._last_known: Optional[ScaleEstimate] = None   # "once metres, always metres" (scale-estimating modes)
        self.rig_scale = RigWindowScale(self.num_cameras, rig_scale) if self.num_cameras > 1 else None
        self._rig_timing: dict = {}   # rig: snapshot id -> RigSnapshotTiming (the current window's snapshots)
        self.tracking_state = TrackingStateMachine() if self.tracking else None
        net_wh = (backend.width, backend.height)
        self.streams = [CameraStream(net_wh, label=f"camera {c}" if self.num_cameras > 1 else "")
                        for c in range(self.num_cameras)]
        self._next_id = 0
        self._odometry_at = None   # this snapshot's lookup of a late odometry (process)
        self._last_stamp_ns: Optional[int] = None
        self.resets = 0

    def _robot_odometry(self, backend: InferenceBackend, config: ProcessorConfig) -> Optional[RobotOdometry]:
        robot_config = RobotOdometryConfig(scale_source=config.scale_source, pose_source=config.pose_source)
        if robot_config.active and not self.tracking:
            raise ValueError("scale_source: odometry / pose_source: tf need a model that predicts camera poses with "
                             f"a window of >= 2 views (this one: {backend.views} view(s), predicts poses: "
                             f"{self.capabilities.predicts_poses})")
        pose_conditioned = bool(getattr(backend, "pose_conditioned", False))
        if not (robot_config.active or pose_conditioned):
            return None
        return RobotOdometry(robot_config, pose_conditioned=pose_conditioned,
                             network_hw=(backend.height, backend.width))

    # -- state ---------------------------------------------------------------------------------
    @property
    def uses_rig_scale(self) -> bool:
        return self.config.scale_source.uses_rig

    @property
    def scale_expected(self) -> bool:
        """A metric scale source is configured (outputs become metres once it is known)."""
        return self.uses_rig_scale or (self.robot is not None and self.robot.config.scale_expected)

    @property
    def scale_estimate(self) -> Optional[ScaleEstimate]:
        """The odometry frame's metric scale: the robot odometry's, the rig's, or both fused (rig_odometry);
        None without a source."""
        robot = self.robot.scale_estimate if self.robot is not None else None
        if not self.uses_rig_scale:
            return robot
        if robot is None:
            return self.rig_scale.estimate
        return fuse_scale_estimates([self.rig_scale.estimate, robot], ("rig", "odometry"))

    @property
    def metres_per_unit(self) -> Optional[float]:
        """Metres per odometry unit once a configured scale source knows it (or knew it: once metres, always
        metres), else None. Placed (pose-conditioned) windows: 1 from the first aligned window on."""
        if self.placed:
            return 1.0 if self._placed_metres else None
        est = self.scale_estimate
        if est is not None and est.known:
            return est.scale
        return self._last_known.scale if self._last_known is not None else None

    def _published_estimate(self) -> Optional[ScaleEstimate]:
        """The scale estimate that goes with the published unit: the current one when known; after it was known
        (once metres, always metres) the last known scale with the current estimate's state in ``reason`` and a
        relative uncertainty of at least the estimator's limit; placed windows: 1 m per unit with the spread of
        the re-estimated window scales."""
        est = self.scale_estimate
        if self.placed:
            if not self._placed_metres:
                return est
            rel = self.robot.placed_relative_uncertainty()
            return ScaleEstimate(state=KNOWN, scale=1.0, uncertainty=rel, relative_uncertainty=rel,
                                 provisional_scale=1.0, n_pairs=0 if est is None else est.n_pairs,
                                 n_frames=0 if est is None else est.n_frames, frame_used=True,
                                 reason="pose-conditioned windows aligned to TF poses (metres by construction)")
        if est is None or est.known or self._last_known is None:
            return est
        last = self._last_known
        rel = max(last.relative_uncertainty or 0.0, self.robot_scale_limit())
        return replace(last, uncertainty=last.scale * rel, relative_uncertainty=rel,
                       reason=f"last known scale (re-estimating: {est.reason})")

    def robot_scale_limit(self) -> float:
        """The relative uncertainty above which a scale estimate is not known (for the latched scale)."""
        robot = self.robot
        if robot is not None and robot.config.scale_source.uses_odometry:
            return robot.config.scale.max_relative_uncertainty
        return robot.config.conditioned_scale.max_relative_uncertainty if robot is not None else 0.05

    @property
    def tracking_status(self) -> Optional[TrackingStatus]:
        return self.tracking_state.status if self.tracking_state is not None else None

    @property
    def intrinsics_source(self) -> str:
        """Where the reference camera's intrinsics come from (camera_info or the model's)."""
        return self.streams[0].intrinsics_source

    @property
    def depth_unit(self) -> str:
        """The unit of the published depth / points (true for the latest snapshot; shown on /diagnostics)."""
        return depth_unit(scale_expected=self.scale_expected, scale_known=self.metres_per_unit is not None,
                          tracking=self.tracking, predicts_poses=self.capabilities.predicts_poses,
                          metric_depth=self.metric, camera_info_known=self.intrinsics_source == "camera_info")

    def apply_runtime_config(self, config: ProcessorConfig) -> None:
        """Take over ``ProcessorConfig.RUNTIME_FIELDS`` (point filter, publish_points) from ``config``; call
        between snapshots (the node's worker does, before each one)."""
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
        if self.num_cameras == 1:
            info.update(self.streams[0].describe(""))
        else:
            info["rig_cameras"] = self.num_cameras
            info["rig_window"] = f"{self.num_cameras} cameras x {self.snapshots} snapshots"
            for c, stream in enumerate(self.streams):
                info.update(stream.describe(f"camera{c}_"))
        if self.map is not None:
            info.update(self.map.stats())
        status = self.tracking_status
        if status is not None:
            info.update(tracking_state=status.state, tracking_reason=status.reason,
                        tracking_lost_episodes=status.lost_episodes, tracking_lost_frames=status.lost_frames,
                        tracking_reinitialisations=status.reinitialisations, tracking_resets=status.resets)
        est = self._published_estimate()
        if est is not None:
            info["metric_scale"] = est.summary()
            info["metric_scale_m_per_unit"] = est.scale if est.known else "unknown"
            info["metric_scale_relative_uncertainty"] = est.relative_uncertainty if est.known else "unknown"
        if self.uses_rig_scale:
            info.update(self.rig_scale.describe())
        if self.robot is not None and self.robot.pose_conditioned:
            info["windows_conditioned"] = self.robot.windows_conditioned
            info["windows_unconditioned"] = self.robot.windows_unconditioned
            info["windows_no_odometry"] = self.robot.windows_no_odometry
            spread = self.robot.placed_relative_uncertainty()
            info["window_scale_spread"] = round(spread, 6)
            info["conditioning"] = self.robot.last_conditioning_reason
            if self.robot.last_pose_residual is not None:
                info["pose_residual_m"] = round(self.robot.last_pose_residual, 6)
        return info

    # -- loop closure (thread-safe; pipeline/loop_closure.py) ------------------------------------
    def map_correction(self) -> Optional[np.ndarray]:
        """``T_map_odom`` 4x4 (odometry units; identity until the first loop / relocalisation); None while loop
        closure is inactive. Thread-safe."""
        return self.loop.map_correction()

    def loop_stats(self) -> dict:
        """Loop closure's diagnostics (``loop_closure`` state, candidates, accepted, rejected by reason, the last
        optimisation's time and size, keyframes in the map, relocalised, loaded map). Thread-safe."""
        return self.loop.stats()

    def save_map(self, directory: str) -> str:
        """Write the map into a new folder under ``directory`` (created if missing); its absolute path.
        Thread-safe (a service thread while the worker runs); RuntimeError when there is nothing to save."""
        return self.loop.save(directory, self.metres_per_unit)

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
        self.loop.close()

    def reset(self, reason: str, keep_odom_frame: bool) -> None:
        """``keep_odom_frame=False``: a new trajectory (odometry frame, unit, scale, map, tracking state)."""
        if self.tracker is not None:
            self.tracker.reset(reason, keep_odom_frame=keep_odom_frame)
        if keep_odom_frame:
            return
        self.resets += 1
        self._last_known = None     # a new trajectory: a new odometry unit (placed windows stay metres)
        if self.map is not None:
            self.map.clear()
        self.loop.reset(reason)
        if self.robot is not None:
            self.robot.reset(reason)
        if self.tracking_state is not None:
            self.tracking_state.reset(reason)
        if self.rig_scale is not None:
            self.rig_scale.reset(reason)

    # -- the per-snapshot path -----------------------------------------------------------------
    def process(self, frames: Sequence[CameraFrame], T_odometry_base=None, odometry_at=None) -> WindowOutcome:
        """One snapshot: ``frames[c]`` of camera c; the reference camera's stamp is the snapshot's.
        ``T_odometry_base``: the robot odometry at that stamp (used with ``scale_source`` / ``pose_source``;
        None: not available for this snapshot), or a rig's list of C poses, the odometry at each camera's own
        stamp (None entries: not available): unsynchronised cameras are then placed at their own instants
        (``RigSnapshotTiming``; a single pose serves the cameras that share the reference stamp). It may also be
        a callable giving either: called before inference only for a pose-conditioned model (its encoding needs
        it), else after inference (the scale alone: a late odometry may have arrived by then). ``odometry_at``
        (``scale_source: odometry``): ``T_odometry_base`` at an earlier stamp (ns) without waiting: a frame whose
        odometry had not arrived after its inference is added to the scale when it has (``RobotOdometry``)."""
        self._check_frames(frames)
        self._odometry_at = odometry_at
        events: List[StreamEvent] = []
        stages: dict = {}
        stamp_ns = int(frames[0].stamp_ns)
        late = callable(T_odometry_base) and not (self.robot is not None and self.robot.pose_conditioned)
        if callable(T_odometry_base) and not late:
            T_odometry_base = T_odometry_base()
        reset = self._check_stream(frames, stamp_ns, events)
        t = time.perf_counter()
        frames, nets, K_cams = self._prepare(frames, events, stages)
        mounts = [None if f.T_base_cam is None else np.asarray(f.T_base_cam, np.float64) for f in frames]
        snapshot_id = self._next_id
        self._next_id += 1
        if self.robot is not None and mounts[0] is not None:
            self.robot.set_base_camera(mounts[0])
        if not late:
            T_odometry_base = self._record_odometry(snapshot_id, frames, mounts, T_odometry_base)
        stages["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        ids, images = self._window_images(snapshot_id, stamp_ns, nets)
        if self.num_cameras > 1:   # the snapshots a later window can hold are keyframes of this one or this one
            self._rig_timing = {i: self._rig_timing[i] for i in ids if i in self._rig_timing}
        conditioning = self._conditioning(ids, K_cams, mounts)
        view_keys = None if ids is None else [(i, c) for i in ids for c in range(self.num_cameras)]  # token cache
        prediction = self.backend.infer(images, conditioning.encoding if conditioning is not None else None,
                                        view_keys=view_keys)
        stages["inference"] = time.perf_counter() - t
        if late:
            T_odometry_base = self._record_odometry(snapshot_id, frames, mounts, T_odometry_base())

        t = time.perf_counter()
        conditioned = False
        if conditioning is not None:
            prediction, conditioned, _ = self.robot.align(conditioning, prediction)
        cameras_net = self._network_cameras(prediction, K_cams, prediction.depth.shape[0] // self.num_cameras)
        if not self.tracking or prediction.extrinsics is None:
            stages["alignment"] = time.perf_counter() - t
            return self._untracked(frames, prediction, K_cams[0], cameras_net, reset, events, stages)
        result = self._track(ids, prediction, cameras_net, events, placed_metric=conditioned if self.placed else None)
        T_window_cam = (extrinsics_to_T_world_cam(np.asarray(prediction.extrinsics, np.float64))
                        if self.num_cameras > 1 else None)
        if self.placed:
            rig = None
            if self.rig_scale is not None:   # a placed rig window: its extrinsics are the given (TF) ones
                last = (len(ids) - 1) * self.num_cameras
                rig = self.rig_scale.measure(ids, T_window_cam, prediction.depth[last:last + self.num_cameras], mounts)
            scale = replace(self._placed_scale(snapshot_id, stamp_ns, result, conditioned), rig=rig)
        else:
            scale = self._scale(snapshot_id, stamp_ns, ids, result, prediction, T_window_cam, mounts, conditioned)
        stages["alignment"] = time.perf_counter() - t

        poses = self._camera_poses(result, T_window_cam, len(ids))
        outputs = self._camera_outputs(frames, prediction, cameras_net, scale.to_published, poses, stages,
                                       keyframe=result.keyframe)
        tracking = result.outcome
        if result.keyframe and result.T_odom_cam is not None:
            t = time.perf_counter()
            T_odometry_cam = (None if T_odometry_base is None or mounts[0] is None
                              else np.asarray(T_odometry_base, np.float64) @ mounts[0])
            if self.loop.on_keyframe(snapshot_id, stamp_ns, nets[0], result, prediction, T_odometry_cam,
                                     self.metres_per_unit, self.num_cameras):
                tracking = TrackingOutcome.RELOCALISED
            stages["loop"] = time.perf_counter() - t
        if self.map is not None and result.keyframe and result.T_odom_cam is not None and np.isfinite(
                scale.to_published):
            self._submit_keyframe(snapshot_id, outputs, result.scale / scale.to_published, stages)
        return WindowOutcome(
            cameras=tuple(outputs), tracking=tracking, reason=result.reason, keyframe=result.keyframe,
            reset=reset, conditioned=conditioned, metres_per_unit=scale.metres_per_unit,
            scale_estimate=scale.estimate, T_odometry_base=T_odometry_base, tracking_status=self.tracking_status,
            tracking_stats=MappingProxyType(dict(result.stats)) if result.T_odom_cam is not None else None,
            median_depth=scale.median_depth, rig_scale=scale.rig, depth_scaled_by=scale.scaled_by,
            events=tuple(events), stage_seconds=MappingProxyType(stages))

    def _record_odometry(self, snapshot_id: int, frames: Sequence[CameraFrame], mounts: list, T_odometry_base):
        """The snapshot's robot odometry to ``RobotOdometry`` (the reference camera's) and, in a rig, each camera's
        to the snapshot's ``RigSnapshotTiming``; returns the reference camera's pose."""
        odometry = self._camera_odometry(frames, T_odometry_base)
        if self.robot is not None:
            self.robot.add_frame(snapshot_id, odometry[0])
        if self.num_cameras > 1:
            self._rig_timing[snapshot_id] = RigSnapshotTiming.of([f.stamp_ns for f in frames], mounts, odometry)
        return odometry[0]

    def _camera_odometry(self, frames: Sequence[CameraFrame], T_odometry_base) -> list:
        """The robot odometry at each camera's stamp: a list of C poses as given, or one pose for the reference
        stamp that also serves the cameras with that stamp (None for the others: not known)."""
        C = self.num_cameras
        if T_odometry_base is not None and not isinstance(T_odometry_base, np.ndarray):
            poses = list(T_odometry_base)
            if len(poses) != C:
                raise ValueError(f"T_odometry_base per camera needs {C} poses (None: unknown), got {len(poses)}")
            return [None if T is None else np.asarray(T, np.float64) for T in poses]
        stamp = int(frames[0].stamp_ns)
        return [T_odometry_base if int(f.stamp_ns) == stamp else None for f in frames]

    def _check_frames(self, frames: Sequence[CameraFrame]) -> None:
        if len(frames) != self.num_cameras:
            raise ValueError(f"a snapshot of this processor has {self.num_cameras} camera frame(s), got {len(frames)}")
        for c, f in enumerate(frames):
            check_rgb(f.rgb, f"camera {c}: " if self.num_cameras > 1 else "")

    def _check_stream(self, frames: Sequence[CameraFrame], stamp_ns: int, events: List[StreamEvent]) -> bool:
        """Time jump back (``reset_on_time_jump_back``): reset trajectory and map, True; a new image size of any
        camera: a window reset that keeps the odometry frame."""
        reset = False
        last = self._last_stamp_ns
        if last is not None and stamp_ns < last and self.config.reset_on_time_jump_back:
            events.append(StreamEvent("time_jump_back", f"image stamp went back by {(last - stamp_ns) * 1e-9:.3f} s "
                                      "(bag loop?): resetting window, trajectory and map"))
            self.reset("time_jump_back", keep_odom_frame=False)
            reset = True
        self._last_stamp_ns = stamp_ns
        resized = [stream.update_size(f.rgb.shape[1], f.rgb.shape[0], events)
                   for stream, f in zip(self.streams, frames)]
        if any(resized):
            self.reset("resolution_change", keep_odom_frame=True)
        return reset

    def _prepare(self, frames: Sequence[CameraFrame], events: List[StreamEvent], stages: dict):
        """(the frames rectified, network images, camera_info K in network pixels or None) per camera."""
        rectified, nets, K_cams = [], [], []
        for c, (stream, f) in enumerate(zip(self.streams, frames)):
            f = stream.rectify(f)
            if f.camera is not frames[c].camera:
                stages[f"rectify{f'_camera{c}' if self.num_cameras > 1 else ''}"] = stream.rectify_seconds
            rectified.append(f)
            nets.append(stream.mapping.image_to_network(f.rgb))
            K_cams.append(stream.network_intrinsics(f, events))
        return rectified, nets, K_cams

    def _window_images(self, snapshot_id: int, stamp_ns: int, nets: List[np.ndarray]):
        """(the window's snapshot ids or None without tracking, (N, h, w, 3) images snapshot-major)."""
        if not self.tracking:
            return None, np.repeat(nets[0][None], self.backend.views, axis=0)
        snapshot = nets[0][None] if self.num_cameras == 1 else np.stack(nets)    # (C, h, w, 3)
        ids = self.tracker.window_for(snapshot_id, stamp_ns * 1e-9, snapshot)
        images = self.tracker.window_images(ids)                                # (k + 1, C, h, w, 3)
        return ids, images.reshape((-1,) + images.shape[-3:])

    def _conditioning(self, ids, K_cams: List[Optional[np.ndarray]], mounts: List[Optional[np.ndarray]]):
        """A pose-conditioned model's window conditioning (each view's TF pose), else None."""
        robot = self.robot
        if robot is None or not robot.pose_conditioned:
            return None
        view_ids = [i for i in ids for _ in range(self.num_cameras)]
        K_views = None if any(K is None for K in K_cams) else np.stack(K_cams * len(ids))
        view_mounts = None
        if not any(M is None for M in mounts):
            # each snapshot's cameras at their own stamps: T_odometry_base(t_0) @ inv(..)(t_0) @ T_odometry_base(t_c)
            # @ T_base_cam(c) (RigSnapshotTiming; uncompensated snapshots: the static mounts)
            static = np.stack(mounts)
            timing = [self._rig_timing.get(i) for i in ids]
            view_mounts = np.concatenate([static if t is None else t.mounts(static) for t in timing])
        return robot.condition(view_ids, K_views, view_mounts)

    def _network_cameras(self, prediction, K_cams: List[Optional[np.ndarray]], snapshots: int) -> np.ndarray:
        """(N, 3, 3) float64 the window's network cameras in the project's pixel-centre convention: camera_info's
        of the view's camera when known, else the model's converted from DA3's pixel-corner convention -- the one
        place where predicted intrinsics enter the pipeline (the prediction itself is not changed) -- else a
        centred ``DEFAULT_HFOV_DEG`` guess."""
        C = self.num_cameras
        out = np.empty((C * snapshots, 3, 3), np.float64)
        for v in range(C * snapshots):
            K = K_cams[v % C]
            if K is None and prediction.intrinsics is not None:
                K = PinholeCamera.from_da3_intrinsics(prediction.intrinsics[v], prediction.width, prediction.height).K
            if K is None:
                K = PinholeCamera.centred(self.backend.width, self.backend.height, DEFAULT_HFOV_DEG).K
            out[v] = K
        return out

    def _track(self, ids, prediction, cameras_net: np.ndarray, events: List[StreamEvent],
               placed_metric: Optional[bool] = None) -> FrameResult:
        """The tracker's result for the reference camera's views (every view with one camera). ``placed_metric``
        not None: a pose-conditioned window, placed by SE(3) (``WindowTracker.place``; True: aligned, metres)."""
        C = self.num_cameras
        reference = prediction
        if C > 1:
            ref = slice(0, None, C)   # the reference camera's view of every snapshot (a view, no copy)
            reference = replace(prediction, depth=prediction.depth[ref],
                                depth_conf=None if prediction.depth_conf is None else prediction.depth_conf[ref],
                                extrinsics=prediction.extrinsics[ref],
                                intrinsics=None if prediction.intrinsics is None else prediction.intrinsics[ref])
        if placed_metric is not None:
            return self.tracker.place(ids, reference, cameras_net[::C].astype(np.float32), metric=placed_metric)
        result = self.tracker.update(ids, reference, cameras_net[::C].astype(np.float32))
        if result.rejected:
            events.append(StreamEvent("window_rejected", f"window rejected ({result.reason}): depth published "
                                      "with the last accepted scale, no pose"))
        elif result.reinitialised:
            events.append(StreamEvent("reinitialised", f"trajectory re-initialised ({result.reason})"))
        return result

    def _scale(self, snapshot_id: int, stamp_ns: int, ids, result: FrameResult, prediction,
               T_window_cam: Optional[np.ndarray], mounts, conditioned: bool) -> _WindowScale:
        """The window's metric scale, the tracking state, and the factor from window units to the published unit
        (``result.scale``: odometry units per window unit; a rejected window: the last accepted one)."""
        tracked = result.T_odom_cam is not None
        window_scale = result.scale
        rig = None
        if self.rig_scale is not None:
            last = (len(ids) - 1) * self.num_cameras
            rig = self.rig_scale.measure(ids, T_window_cam, prediction.depth[last:last + self.num_cameras], mounts,
                                         self._rig_timing)
            if self.uses_rig_scale:
                self.rig_scale.add(rig, window_scale, tracked, result.reinitialised)
        median_depth = None
        if tracked:
            sub = result.depth[::4, ::4]   # for the pose covariances: every 16th pixel is plenty
            valid = sub[np.isfinite(sub) & (sub > 0)]
            median_depth = float(np.median(valid)) if valid.size else None
        estimate = None
        if self.robot is not None:
            self.robot.keep_frames(list(self.tracker.keyframe_ids) + [snapshot_id])
            estimate = self.robot.update_scale(snapshot_id, stamp_ns * 1e-9, result.T_odom_cam, window_scale,
                                               median_depth, result.reinitialised, conditioned,
                                               odometry_at=self._odometry_at, stamp_ns=stamp_ns)
        if self.uses_rig_scale:
            estimate = self.scale_estimate
        if estimate is not None and estimate.known:
            self._last_known = estimate
        estimate = self._published_estimate()
        s = self.metres_per_unit
        self.tracking_state.on_frame(accepted=tracked, reinitialised=result.reinitialised, stamp=stamp_ns * 1e-9,
                                     reason=result.reason)
        # window units -> published unit: the window's own rig scale when trusted, else the odometry frame's
        if self.uses_rig_scale and rig is not None and rig.trusted:
            to_published, scaled_by = rig.scale, "window rig scale"
        elif s is not None:
            to_published = window_scale * s
            scaled_by = "odometry-frame scale" if self.scale_estimate.known else "last known scale"
        else:
            to_published, scaled_by = window_scale, "none"
        return _WindowScale(to_published, scaled_by, s, estimate, rig, median_depth)

    def _placed_scale(self, snapshot_id: int, stamp_ns: int, result: FrameResult, conditioned: bool) -> _WindowScale:
        """A placed (pose-conditioned) window: depth published as aligned (factor 1, metres) or, when it could not
        be aligned, as NaN; the re-estimated window scale feeds the uncertainty only."""
        median_depth = None
        sub = result.depth[::4, ::4]
        valid = sub[np.isfinite(sub) & (sub > 0)]
        if conditioned and valid.size:
            median_depth = float(np.median(valid))
        self.robot.keep_frames(list(self.tracker.keyframe_ids) + [snapshot_id])
        self.robot.update_scale(snapshot_id, stamp_ns * 1e-9, result.T_odom_cam,
                                result.stats.get("keyframe_depth_ratio"), median_depth, False, conditioned)
        self._placed_metres = self._placed_metres or conditioned
        self.tracking_state.on_frame(accepted=True, reinitialised=result.reinitialised, stamp=stamp_ns * 1e-9,
                                     reason=result.reason)
        to_published = 1.0 if conditioned else float("nan")
        scaled_by = "pose-conditioned (metres)" if conditioned else "not aligned to TF (no depth)"
        return _WindowScale(to_published, scaled_by, self.metres_per_unit, self._published_estimate(), None,
                            median_depth)

    def _camera_poses(self, result: FrameResult, T_window_cam: Optional[np.ndarray], snapshots: int) -> list:
        """Each camera's ``T_odom_cam`` (odometry units; None without a pose): the reference camera's from the
        tracker, the others through the window's predicted inter-camera pose."""
        C = self.num_cameras
        if result.T_odom_cam is None:
            return [None] * C
        poses = [result.T_odom_cam]
        last = (snapshots - 1) * C
        for c in range(1, C):
            T_cam0_camc = invert_transform(T_window_cam[last]) @ T_window_cam[last + c]
            T_cam0_camc[:3, 3] *= result.scale
            poses.append(result.T_odom_cam @ T_cam0_camc)
        return poses

    def _camera_outputs(self, frames: Sequence[CameraFrame], prediction, cameras_net: np.ndarray,
                        to_published: float, poses: list, stages: dict, keyframe: bool) -> List[CameraOutput]:
        """Per camera of the current snapshot: depth (window units x ``to_published``), confidence and camera at
        camera resolution, its pose, and its organized cloud (published points, or a keyframe for the map)."""
        C = self.num_cameras
        last = prediction.depth.shape[0] - C
        cloud = self.config.publish_points or (self.map is not None and keyframe)
        outputs = []
        for c, (stream, frame) in enumerate(zip(self.streams, frames)):
            suffix = f"_camera{c}" if C > 1 else ""
            t = time.perf_counter()
            v = last + c
            depth, confidence, camera = stream.to_camera(
                prediction.depth[v] * np.float32(to_published),
                prediction.depth_conf[v] if prediction.depth_conf is not None else None, frame.camera, cameras_net[v])
            stages[f"postprocess{suffix}"] = time.perf_counter() - t
            points = colours = None
            valid = 0
            if cloud:
                t = time.perf_counter()
                points, colours, valid = self.cloud.build(depth, camera, frame.rgb, confidence)
                stages[f"cloud{suffix}"] = time.perf_counter() - t
            outputs.append(CameraOutput(int(frame.stamp_ns), depth, confidence, camera, poses[c], points, colours,
                                        valid))
        return outputs

    def _submit_keyframe(self, snapshot_id: int, outputs: List[CameraOutput], units_per_published: float,
                         stages: dict) -> None:
        """A keyframe's clouds to the map thread, in odometry units (a refined scale rescales the map
        consistently; the map thread's output is scaled to metres on the way out, ``_map_updated``)."""
        t = time.perf_counter()
        for c, out in enumerate(outputs):
            if out.points is None:
                continue
            points = out.points if units_per_published == 1.0 else out.points * np.float32(units_per_published)
            self.map.submit((snapshot_id, c), out.stamp_ns, points, out.point_colours, out.T_odom_cam,
                            self.loop.map_correction())
        stages["map"] = time.perf_counter() - t   # the hand-over; fusing is timed on the map thread

    def _untracked(self, frames: Sequence[CameraFrame], prediction, K_net: Optional[np.ndarray],
                   cameras_net: np.ndarray, reset: bool, events: List[StreamEvent], stages: dict) -> WindowOutcome:
        """Per-frame depth without tracking (N = 1 or a model without poses): no pose, no keyframe; a metric model
        in metres with camera_info's focal length."""
        factor = 1.0
        if self.metric and K_net is not None:
            factor = float(np.float32(0.5 * (K_net[0, 0] + K_net[1, 1]) / METRIC_CANONICAL_FOCAL))
        outputs = self._camera_outputs(frames, prediction, cameras_net, factor, [None], stages, keyframe=False)
        return WindowOutcome(cameras=tuple(outputs), tracking=TrackingOutcome.UNTRACKED, reset=reset,
                             tracking_status=self.tracking_status, events=tuple(events),
                             stage_seconds=MappingProxyType(stages))
