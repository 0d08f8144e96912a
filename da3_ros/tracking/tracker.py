"""``WindowTracker``: one consistent odometry frame from per-window multi-view predictions.

Usage (per incoming frame)::

    tracker = WindowTracker(TrackerConfig(window_size=4))
    ids = tracker.window_for(frame_id, stamp, image)  # N frame ids, newest frame LAST
    prediction = model(tracker.window_images(ids))    # depth/depth_conf/extrinsics
    result = tracker.update(ids, prediction, K_net)   # FrameResult of the newest frame

Conventions
-----------
- ``prediction`` is any object (e.g. ``WindowPrediction``, ``OracleWindow``) or mapping with
  per-view arrays in the order of ``ids``: ``depth`` (N, h, w), ``depth_conf`` (N, h, w) (>= 1;
  may be None -> all ones), ``extrinsics`` (N, 3, 4) world->camera in the window frame. The window
  frame may be ANY view's camera (``first``, ``saddle_balanced``, ...): the tracker only uses the
  extrinsics. The prediction's own ``intrinsics`` are NOT read.
- ``cameras_net`` (the argument of ``update``): the window's cameras in pixels of the h x w network
  input, in the project's pixel-centre convention (``da3_ros.geometry.camera``): (N, 3, 3) K, one (3, 3)
  K for every view, a ``PinholeCamera`` or a sequence of N of them. ``WindowProcessor`` passes
  camera_info's K, or the model's DA3-convention K converted once with ``PinholeCamera.from_da3_intrinsics``.
- Images: ``window_for(frame_id, stamp, image)`` registers the frame's network image; the tracker
  keeps it while the frame is a keyframe (it is dropped when the keyframe leaves the window or on
  ``reset``) and ``window_images(ids)`` stacks the window's images for the model. Without images
  (``image=None``, e.g. an oracle) the tracker works the same; only ``window_images`` then refuses.
- Padding: until N-1 keyframes exist, ``window_for`` front-pads the window by repeating the oldest
  keyframe (the very first window is N copies of the first frame). Repeated ids are fine.
- Odometry frame and unit: the first window fixes them. The odom frame is the camera frame of the
  first frame (its pose is the identity). ``unit`` is ``"model"`` (the first window's arbitrary
  scale, any-view models, Sim(3) alignment) or ``"m"`` (``metric=True``, SE(3) alignment, scale 1).
- Poses ``T_odom_cam`` are camera-to-odom SE(3) 4x4 (OpenCV optical axes for the camera).
- A window is rejected when its alignment fails a quality gate (see ``window_alignment``) or when
  the newest frame's pose jumps more than the step limits. A rejected frame has ``T_odom_cam``,
  ``depth`` and ``confidence`` = None, ``scale`` = the last accepted scale (``last_scale``: what its
  depth is published with; 1 before the first window) and changes nothing in the tracker state.
- Placement by SE(3) (``place``, pose-conditioned windows, ``pose_source: tf``): the prediction's
  extrinsics are the **given** poses in one metric world frame shared by every placed window (the robot's
  odometry frame; ``PoseConditionedWindow.align`` returns exactly those), so the window is not aligned at
  all: ``T_odom_world`` is fixed by the first placed frame (its camera is the odometry frame's origin,
  as always), every later pose is ``T_odom_world @ T_world_cam`` and the depth is used as given (scale 1).
  ``metric=False`` places a window whose depth is not in the world's unit (it could not be aligned to its
  poses: no baseline); its keyframe is marked non-metric and replaced by the first metric window that shares
  it. ``stats["keyframe_depth_ratio"]``: the median ratio of this window's depth of the shared metric
  keyframes to their stored depth (the re-estimated scale of a metric window; it is measured, never applied).
- Re-initialisation: after ``max_consecutive_rejections`` rejected windows in a row (or when a
  window shares no keyframe, e.g. after ``reset(keep_odom_frame=True)``), the newest window is
  anchored so that its newest frame keeps the last accepted pose and median depth (the odometry
  frame does not jump), the keyframe list restarts from the newest frame and the result has
  ``reinitialised=True``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Hashable, List, Mapping, Optional, Tuple

import numpy as np

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.geometry.transforms import extrinsics_to_T_world_cam, project_to_rotation, rotation_angle

from .keyframes import KeyframePolicy, KeyframePolicyConfig, select_window
from .pixel_grid import PixelGrid
from .window_alignment import AlignmentConfig, SharedView, WindowAlignment, align_window
from .tracking_outcome import TrackingOutcome

__all__ = ["TrackerConfig", "FrameResult", "TrajectoryEntry", "KeyframeRecord", "WindowTracker"]


@dataclass
class TrackerConfig:
    """Parameters of ``WindowTracker`` (see the module docstring)."""

    window_size: int = 4
    metric: bool = False
    grid_points: int = 1000
    keyframes: KeyframePolicyConfig = field(default_factory=KeyframePolicyConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    # newest-frame step limits vs the last accepted frame (per frame elapsed, capped at 5 frames)
    max_step_translation_ratio: float = 0.25
    max_step_rotation_deg: float = 15.0
    max_consecutive_rejections: int = 5
    # accepted poses kept in ``trajectory`` (a node runs for days: bounded memory, ~30 MB at the default)
    max_trajectory_length: int = 100_000
    # running-average refinement of stored keyframe points/poses by every accepted window that
    # contains the keyframe (averages out per-window depth noise; limits scale drift)
    refine_keyframes: bool = True
    # keyframe thresholds are multiplied by this while fewer than N-1 keyframes exist
    startup_keyframe_factor: float = 0.5

    def __post_init__(self):
        if self.window_size < 2:
            raise ValueError("window_size must be >= 2 (the new frame + at least one keyframe), "
                             f"got {self.window_size}")
        if not 0 < self.startup_keyframe_factor <= 1:
            raise ValueError(f"startup_keyframe_factor must be in (0, 1], got {self.startup_keyframe_factor}")
        if self.max_consecutive_rejections < 1:
            raise ValueError(f"max_consecutive_rejections must be >= 1, got {self.max_consecutive_rejections}")
        self.alignment.with_scale = not self.metric

    @property
    def unit(self) -> str:
        return "m" if self.metric else "model"


@dataclass
class FrameResult:
    """Per-frame output for the newest frame of a window.

    ``T_odom_cam``: camera-to-odom SE(3) 4x4 (None when rejected); ``depth``: (h, w) float32 z-depth
    in odometry units (None when rejected); ``confidence``: (h, w) float32 >= 1 as predicted;
    ``intrinsics``: (3, 3) of the h x w prediction (the ``cameras_net`` given to ``update``, pixel
    centres); ``scale``: window units -> odometry units (a rejected frame: the last accepted scale,
    with which its depth is published); ``unit``: "model" or "m"; ``outcome``: a
    :class:`~da3_ros.tracking.tracking_outcome.TrackingOutcome` (``aligned`` / ``rejected`` / ``reinitialised``
    are read from it).
    """

    frame_id: Hashable
    stamp: float
    T_odom_cam: Optional[np.ndarray]
    depth: Optional[np.ndarray]
    confidence: Optional[np.ndarray]
    intrinsics: np.ndarray
    keyframe: bool
    outcome: TrackingOutcome
    scale: float
    unit: str
    reason: str = ""
    stats: Dict[str, float] = field(default_factory=dict)

    @property
    def aligned(self) -> bool:
        return self.outcome is TrackingOutcome.ALIGNED

    @property
    def rejected(self) -> bool:
        return self.outcome is TrackingOutcome.REJECTED

    @property
    def reinitialised(self) -> bool:
        return self.outcome is TrackingOutcome.REINITIALISED


@dataclass
class TrajectoryEntry:
    frame_id: Hashable
    stamp: float
    T_odom_cam: np.ndarray
    keyframe: bool


@dataclass
class KeyframeRecord:
    """What a keyframe keeps for aligning later windows (grid-subsampled, odometry frame)."""

    frame_id: Hashable
    seq: int
    stamp: float
    T_odom_cam: np.ndarray
    points_odom: np.ndarray
    depth_odom: np.ndarray
    conf: np.ndarray
    median_depth: float
    observations: int = 1
    image: Optional[np.ndarray] = None   # the network input image of this frame (``window_images``)
    metric: bool = True                  # points / depths in the odometry unit (False: a non-metric placed window)


_PENDING_IMAGES = 4
"""Registered frames whose window was never updated (the model failed) keep their image only until this
many newer frames are registered (bounded memory)."""


def _window_K(cameras_net: Any, n: int) -> np.ndarray:
    """(n, 3, 3) float64 K from ``cameras_net`` (see the module docstring)."""
    if cameras_net is None:
        raise ValueError("update needs the window's network cameras (cameras_net: pixel-centre K)")
    if isinstance(cameras_net, PinholeCamera):
        cameras_net = cameras_net.K
    elif isinstance(cameras_net, (list, tuple)) and cameras_net and isinstance(cameras_net[0], PinholeCamera):
        cameras_net = np.stack([c.K for c in cameras_net])
    K = np.asarray(cameras_net, np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (n, 3, 3))
    if K.shape != (n, 3, 3):
        raise ValueError(f"cameras_net must be (3, 3) or ({n}, 3, 3) intrinsics, got {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("cameras_net intrinsics must be finite")
    return K


def _field(prediction: Any, name: str) -> Optional[np.ndarray]:
    if isinstance(prediction, Mapping):
        return prediction.get(name)
    return getattr(prediction, name, None)


def _confident_median(depth: np.ndarray, conf: np.ndarray, ratio: float) -> float:
    """Median of the positive, finite depths whose confidence is >= ratio x the median confidence
    (all positive depths when none qualifies); NaN when there is no positive depth."""
    ok = (depth > 0) & np.isfinite(depth)
    if not np.any(ok):
        return float("nan")
    good = ok & (conf >= ratio * np.median(conf[ok]))
    return float(np.median(depth[good] if np.any(good) else depth[ok]))


class WindowTracker:
    """Sliding-window tracker; see the module docstring for the API and conventions."""

    def __init__(self, config: Optional[TrackerConfig] = None):
        self.config = config if config is not None else TrackerConfig()
        self.keyframe_policy = KeyframePolicy(self.config.keyframes)
        self._grid: Optional[PixelGrid] = None
        self._keyframes: List[KeyframeRecord] = []
        self._trajectory: Deque[TrajectoryEntry] = deque(maxlen=self.config.max_trajectory_length)
        self._pending: Dict[Hashable, Tuple[int, float, Optional[np.ndarray]]] = {}   # seq, stamp, image
        self._seq = 0
        self._last_accepted: Optional[Tuple[int, np.ndarray, float]] = None  # seq, pose, median depth
        self._last_scale = 1.0
        self._consecutive_rejections = 0
        self._initialised = False
        self._force_reinit = False
        self._T_odom_world: Optional[np.ndarray] = None   # placed windows' world -> odom (``place``)
        self.reset_reasons: List[str] = []

    # ------------------------------------------------------------------ public API
    @property
    def unit(self) -> str:
        return self.config.unit

    @property
    def keyframe_ids(self) -> List[Hashable]:
        return [k.frame_id for k in self._keyframes]

    @property
    def keyframes(self) -> List[KeyframeRecord]:
        return list(self._keyframes)

    @property
    def last_scale(self) -> float:
        """Window units -> odometry units of the last accepted window (1 before the first; a rejected
        window's depth is published with it)."""
        return self._last_scale

    @property
    def trajectory(self) -> List[TrajectoryEntry]:
        """Accepted frames in processing order (rejected frames are absent; the newest
        ``max_trajectory_length``)."""
        return list(self._trajectory)

    def trajectory_array(self) -> Tuple[List[Hashable], np.ndarray]:
        """(frame ids, (F, 4, 4) T_odom_cam) of the accepted frames."""
        if not self._trajectory:
            return [], np.zeros((0, 4, 4))
        return [e.frame_id for e in self._trajectory], np.stack([e.T_odom_cam for e in self._trajectory])

    def window_for(self, frame_id: Hashable, stamp: float = float("nan"),
                   image: Optional[np.ndarray] = None) -> List[Hashable]:
        """Register a new frame (with its network input ``image``, kept if it becomes a keyframe) and
        return the ids of its window (newest frame last, N views)."""
        if frame_id in self.keyframe_ids:
            raise ValueError(f"frame id {frame_id!r} is already a keyframe; frame ids must be unique")
        self._pending[frame_id] = (self._seq, float(stamp), image)
        self._seq += 1
        if len(self._pending) > 64:  # frames whose window was never processed
            for k in list(self._pending)[:-64]:
                del self._pending[k]
        if len(self._pending) > _PENDING_IMAGES:
            for k in list(self._pending)[:-_PENDING_IMAGES]:
                seq, st, img = self._pending[k]
                if img is not None:
                    self._pending[k] = (seq, st, None)
        return select_window(self.keyframe_ids, frame_id, self.config.window_size)

    def window_images(self, window_frame_ids: List[Hashable]) -> np.ndarray:
        """(N, h, w, 3) the images of the window ``window_frame_ids`` (keyframes' and the registered new
        frame's, as given to ``window_for``), in the order of the ids."""
        images = {k.frame_id: k.image for k in self._keyframes}
        images.update({fid: entry[2] for fid, entry in self._pending.items()})
        out = []
        for fid in window_frame_ids:
            image = images.get(fid)
            if image is None:
                raise ValueError(f"no image of frame {fid!r} (not a keyframe or registered without an image)")
            out.append(image)
        return np.stack(out)

    def reset(self, reason: str, keep_odom_frame: bool = False) -> None:
        """Forget keyframes. ``keep_odom_frame=False``: start a new odometry frame and trajectory
        (e.g. a bag loop). ``True``: keep the trajectory; the next window is anchored at the last
        accepted pose (e.g. a resolution change)."""
        self.reset_reasons.append(str(reason))
        self._keyframes = []
        self._grid = None
        self._consecutive_rejections = 0
        if keep_odom_frame and self._last_accepted is not None:
            self._force_reinit = True
        else:
            self._initialised = False
            self._force_reinit = False
            self._trajectory.clear()
            self._last_accepted = None
            self._last_scale = 1.0
            self._T_odom_world = None

    def update(self, window_frame_ids: List[Hashable], prediction: Any, cameras_net: Any) -> FrameResult:
        """Process the prediction of the window ``window_frame_ids`` (as returned by ``window_for``), whose
        views have the network cameras ``cameras_net`` (pixel-centre K; see the module docstring)."""
        ids = list(window_frame_ids)
        depth, conf, c2w = self._check_prediction(ids, prediction)
        K = _window_K(cameras_net, len(ids))
        n, h, w = depth.shape
        new_id = ids[-1]
        if new_id not in self._pending:
            raise ValueError(f"frame {new_id!r} was not registered with window_for() (or was already updated)")
        seq, stamp, image = self._pending.pop(new_id)
        if self._grid is None or (self._grid.height, self._grid.width) != (h, w):
            if self._keyframes:
                raise ValueError(
                    f"prediction size {h}x{w} differs from the keyframes' {self._grid.height}x{self._grid.width}; "
                    "call reset(..., keep_odom_frame=True) on a resolution change"
                )
            self._grid = PixelGrid(h, w, self.config.grid_points)
        grid = self._grid
        new_idx = n - 1
        depth_g = grid.sample(depth).astype(np.float64)  # (N, M)
        conf_g = grid.sample(conf).astype(np.float64)
        pts_cam = grid.unproject(depth_g, K)  # (N, M, 3)
        pts_win = np.matmul(pts_cam, np.swapaxes(c2w[:, :3, :3], 1, 2)) + c2w[:, None, :3, 3]

        if not self._initialised or self._force_reinit:
            anchor = np.eye(4) if not self._initialised else self._last_accepted[1]
            anchor_depth = None if not self._initialised else self._last_accepted[2]
            reinit = self._initialised
            return self._anchor(ids, seq, stamp, image, depth, conf, c2w, K, depth_g, conf_g, pts_win,
                                anchor, anchor_depth, reinit, "initialised" if not reinit else "reinitialised: reset")

        # ---- align to the shared keyframes
        kf_by_id = {k.frame_id: k for k in self._keyframes}
        shared, shared_kfs = [], []
        for i, fid in enumerate(ids[:-1]):  # every view of a keyframe (padding repeats included)
            if fid in kf_by_id and fid != new_id:
                kf = kf_by_id[fid]
                shared_kfs.append(kf)
                shared.append(SharedView(
                    points_odom=kf.points_odom, depth_odom=kf.depth_odom, conf_odom=kf.conf,
                    T_odom_cam=kf.T_odom_cam, median_depth=kf.median_depth,
                    points_window=pts_win[i], depth_window=depth_g[i], conf_window=conf_g[i],
                    T_window_cam=c2w[i],
                ))
        t_align = time.perf_counter()
        al = align_window(shared, self.config.alignment)
        stats = self._stats(al)
        stats["align_s"] = time.perf_counter() - t_align
        pose = None
        if al.ok:
            pose, s = self._pose_in_odom(al.T_odom_window, c2w[new_idx])
            jump = self._step_check(seq, pose)
            if jump:
                al.ok, al.reason = False, jump
        if not al.ok:
            self._consecutive_rejections += 1
            if self._consecutive_rejections >= self.config.max_consecutive_rejections or not shared:
                return self._anchor(ids, seq, stamp, image, depth, conf, c2w, K, depth_g, conf_g, pts_win,
                                    self._last_accepted[1], self._last_accepted[2], True,
                                    f"reinitialised after: {al.reason}")
            return FrameResult(new_id, stamp, None, None, None, K[new_idx].astype(np.float32), False,
                               TrackingOutcome.REJECTED, self._last_scale, self.unit, al.reason, stats)
        self._consecutive_rejections = 0
        s = al.scale
        if self.config.refine_keyframes:
            self._refine_keyframes(shared, shared_kfs, al.T_odom_window)
        depth_odom_g = s * depth_g[new_idx]
        med = _confident_median(depth_odom_g, conf_g[new_idx], self.config.alignment.conf_threshold_ratio)
        last_kf = self._keyframes[-1]
        decision = self.keyframe_policy.decide(last_kf.T_odom_cam, last_kf.median_depth, seq - last_kf.seq,
                                               stamp - last_kf.stamp if np.isfinite(stamp - last_kf.stamp) else 0.0,
                                               pose, self._keyframe_threshold_scale())
        is_kf = decision.is_keyframe and np.isfinite(med) and med > 0
        if is_kf:
            pts_odom = (pts_win[new_idx] @ al.T_odom_window[:3, :3].T) + al.T_odom_window[:3, 3]
            self._add_keyframe(new_id, seq, stamp, image, pose, pts_odom, depth_odom_g, conf_g[new_idx], med)
        stats.update(kf_translation_ratio=decision.translation_ratio, kf_rotation_deg=decision.rotation_deg)
        return self._accept(new_id, seq, stamp, pose, s, depth[new_idx], conf[new_idx], K[new_idx], med,
                            keyframe=is_kf, outcome=TrackingOutcome.ALIGNED,
                            reason=decision.reason if is_kf else "", stats=stats)

    def place(self, window_frame_ids: List[Hashable], prediction: Any, cameras_net: Any,
              metric: bool = True) -> FrameResult:
        """Place the window ``window_frame_ids`` by SE(3): its extrinsics are the given world->camera poses in the
        metric world frame of every placed window (see the module docstring); ``metric``: its depth is in that
        world's unit. The result has scale 1 and the given pose; it is never rejected."""
        ids = list(window_frame_ids)
        depth, conf, c2w = self._check_prediction(ids, prediction)
        K = _window_K(cameras_net, len(ids))
        n, h, w = depth.shape
        new_id = ids[-1]
        if new_id not in self._pending:
            raise ValueError(f"frame {new_id!r} was not registered with window_for() (or was already updated)")
        seq, stamp, image = self._pending.pop(new_id)
        if self._grid is None or (self._grid.height, self._grid.width) != (h, w):
            if self._keyframes:
                raise ValueError(f"prediction size {h}x{w} differs from the keyframes' "
                                 f"{self._grid.height}x{self._grid.width}; call reset(..., keep_odom_frame=True)")
            self._grid = PixelGrid(h, w, self.config.grid_points)
        first = self._T_odom_world is None
        if first:
            self._T_odom_world = np.linalg.inv(c2w[-1])   # the first placed camera is the odometry origin
        T = self._T_odom_world
        depth_g = self._grid.sample(depth).astype(np.float64)
        conf_g = self._grid.sample(conf).astype(np.float64)
        pts_cam = self._grid.unproject(depth_g, K)
        poses = np.matmul(T[None], c2w)                       # (N, 4, 4) camera-to-odom, SE(3)
        pts_odom = np.matmul(pts_cam, np.swapaxes(poses[:, :3, :3], 1, 2)) + poses[:, None, :3, 3]
        stats: Dict[str, float] = {}
        if metric:
            ratio = self._replace_non_metric_keyframes(ids, depth_g, conf_g, pts_odom)
            if ratio is not None:
                stats["keyframe_depth_ratio"] = ratio
        ratio_ = self.config.alignment.conf_threshold_ratio
        med = _confident_median(depth_g[-1], conf_g[-1], ratio_)
        pose = poses[-1]
        restart = first or self._force_reinit or not self._keyframes
        if restart:
            self._keyframes = []
            self._initialised, self._force_reinit, self._consecutive_rejections = True, False, 0
            is_kf, reason = np.isfinite(med) and med > 0, "initialised" if first else "reinitialised: reset"
            outcome = TrackingOutcome.INITIALISED if first else TrackingOutcome.REINITIALISED
        else:
            last_kf = self._keyframes[-1]
            elapsed = stamp - last_kf.stamp if np.isfinite(stamp - last_kf.stamp) else 0.0
            decision = self.keyframe_policy.decide(last_kf.T_odom_cam, last_kf.median_depth, seq - last_kf.seq,
                                                   elapsed, pose, self._keyframe_threshold_scale())
            is_kf = decision.is_keyframe and np.isfinite(med) and med > 0
            reason, outcome = (decision.reason if is_kf else ""), TrackingOutcome.ALIGNED
            stats.update(kf_translation_ratio=decision.translation_ratio, kf_rotation_deg=decision.rotation_deg)
        if is_kf:
            self._add_keyframe(new_id, seq, stamp, image, pose, pts_odom[-1], depth_g[-1], conf_g[-1], med)
            self._keyframes[-1].metric = bool(metric)
        if not np.isfinite(med) or med <= 0:
            med = self._last_accepted[2] if self._last_accepted is not None else 1.0
        return self._accept(new_id, seq, stamp, pose, 1.0, depth[-1], conf[-1], K[-1], med, keyframe=bool(is_kf),
                            outcome=outcome, reason=reason, stats=stats)

    def _replace_non_metric_keyframes(self, ids, depth_g, conf_g, pts_odom) -> Optional[float]:
        """A metric placed window: each shared keyframe placed without metric depth takes this window's view of
        it; returns the median over the shared metric keyframes of (this window's depth / stored depth), None
        without one."""
        by_id = {k.frame_id: k for k in self._keyframes}
        ratios, seen = [], set()
        for i, fid in enumerate(ids[:-1]):
            kf = by_id.get(fid)
            if kf is None or fid in seen:
                continue
            seen.add(fid)
            if not kf.metric:
                med = _confident_median(depth_g[i], conf_g[i], self.config.alignment.conf_threshold_ratio)
                kf.points_odom, kf.depth_odom, kf.conf = pts_odom[i].copy(), depth_g[i].copy(), conf_g[i].copy()
                kf.median_depth = med if np.isfinite(med) and med > 0 else kf.median_depth
                kf.metric, kf.observations = True, 1
                continue
            ok = (depth_g[i] > 0) & np.isfinite(depth_g[i]) & (kf.depth_odom > 0) & np.isfinite(kf.depth_odom)
            if np.count_nonzero(ok) >= 3:
                ratios.append(float(np.median(depth_g[i][ok] / kf.depth_odom[ok])))
        return float(np.median(ratios)) if ratios else None

    # ------------------------------------------------------------------ internals
    def _check_prediction(self, ids, prediction):
        n = self.config.window_size
        if len(ids) != n:
            raise ValueError(f"window must have {n} frame ids, got {len(ids)}")
        depth = _field(prediction, "depth")
        E = _field(prediction, "extrinsics")
        conf = _field(prediction, "depth_conf")
        if depth is None or E is None:
            raise ValueError("prediction needs 'depth' and 'extrinsics' (a multi-view model output)")
        depth = np.asarray(depth)
        if depth.ndim != 3 or depth.shape[0] != n:
            raise ValueError(f"depth must have shape ({n}, h, w), got {depth.shape}")
        E = np.asarray(E, np.float64)
        if E.shape != (n, 3, 4):
            raise ValueError(f"extrinsics must have shape ({n}, 3, 4) (world->camera), got {E.shape}")
        conf = np.ones_like(depth) if conf is None else np.asarray(conf)
        if conf.shape != depth.shape:
            raise ValueError(f"depth_conf must have the depth shape {depth.shape}, got {conf.shape}")
        if not np.all(np.isfinite(E)):
            raise ValueError("extrinsics must be finite")
        return depth, conf, extrinsics_to_T_world_cam(E)

    @staticmethod
    def _pose_in_odom(T_odom_window: np.ndarray, T_window_cam: np.ndarray) -> Tuple[np.ndarray, float]:
        """SE(3) camera-to-odom pose from a Sim(3) window->odom and an SE(3) camera->window."""
        s = float(np.cbrt(np.linalg.det(T_odom_window[:3, :3])))
        R_ow = T_odom_window[:3, :3] / s
        pose = np.eye(4)
        pose[:3, :3] = R_ow @ T_window_cam[:3, :3]
        pose[:3, 3] = T_odom_window[:3, :3] @ T_window_cam[:3, 3] + T_odom_window[:3, 3]
        return pose, s

    def _keyframe_threshold_scale(self) -> float:
        """``startup_keyframe_factor`` while the window is still padded (< N-1 keyframes)."""
        if len(self._keyframes) < self.config.window_size - 1:
            return self.config.startup_keyframe_factor
        return 1.0

    def _step_check(self, seq: int, pose: np.ndarray) -> str:
        if self._last_accepted is None:
            return ""
        last_seq, last_pose, last_med = self._last_accepted
        frames = min(max(seq - last_seq, 1), 5)
        dt = float(np.linalg.norm(pose[:3, 3] - last_pose[:3, 3])) / last_med
        dr = float(np.degrees(rotation_angle(last_pose[:3, :3].T @ pose[:3, :3])))
        if dt > self.config.max_step_translation_ratio * frames:
            limit = self.config.max_step_translation_ratio * frames
            return f"pose_jump_translation ({dt:.3f} x median depth > {limit:.3f})"
        if dr > self.config.max_step_rotation_deg * frames:
            return f"pose_jump_rotation ({dr:.1f} deg > {self.config.max_step_rotation_deg * frames:.1f})"
        return ""

    def _anchor(self, ids, seq, stamp, image, depth, conf, c2w, K, depth_g, conf_g, pts_win,
                anchor_pose, anchor_depth, reinit, reason):
        """Fix the window->odom transform so that the newest frame gets ``anchor_pose`` and (when
        ``anchor_depth`` is given and the model is up-to-scale) that median depth."""
        new_idx = len(ids) - 1
        valid = (depth_g[new_idx] > 0) & np.isfinite(depth_g[new_idx])
        if np.count_nonzero(valid) < 3:
            return FrameResult(ids[-1], stamp, None, None, None, K[new_idx].astype(np.float32), False,
                               TrackingOutcome.REJECTED, self._last_scale, self.unit, "no_valid_depth", {})
        med_win = _confident_median(depth_g[new_idx], conf_g[new_idx], self.config.alignment.conf_threshold_ratio)
        s = 1.0 if (self.config.metric or anchor_depth is None) else anchor_depth / med_win
        T_cam_window = np.linalg.inv(c2w[new_idx])
        T_odom_window = anchor_pose @ np.diag([s, s, s, 1.0]) @ T_cam_window
        pose, _ = self._pose_in_odom(T_odom_window, c2w[new_idx])
        self._keyframes = []
        self._initialised = True
        self._force_reinit = False
        self._consecutive_rejections = 0
        depth_odom_g = s * depth_g[new_idx]
        med = s * med_win
        pts_odom = pts_win[new_idx] @ T_odom_window[:3, :3].T + T_odom_window[:3, 3]
        self._add_keyframe(ids[-1], seq, stamp, image, pose, pts_odom, depth_odom_g, conf_g[new_idx], med)
        return self._accept(ids[-1], seq, stamp, pose, s, depth[new_idx], conf[new_idx], K[new_idx], med,
                            keyframe=True,
                            outcome=TrackingOutcome.REINITIALISED if reinit else TrackingOutcome.INITIALISED,
                            reason=reason, stats={})

    def _refine_keyframes(self, shared: List[SharedView], shared_kfs: List[KeyframeRecord],
                          T_odom_window: np.ndarray) -> None:
        """Fold this window's view of each shared keyframe into its stored points and pose
        (running mean over the accepted windows that contained it)."""
        for sv, kf in zip(shared, shared_kfs):
            n = kf.observations
            obs = sv.points_window @ T_odom_window[:3, :3].T + T_odom_window[:3, 3]
            ok = (sv.depth_window > 0) & np.isfinite(sv.depth_window) & (kf.depth_odom > 0)
            pose_obs, _ = self._pose_in_odom(T_odom_window, sv.T_window_cam)
            pose = kf.T_odom_cam.copy()
            pose[:3, 3] = (n * pose[:3, 3] + pose_obs[:3, 3]) / (n + 1)
            pose[:3, :3] = project_to_rotation(n * pose[:3, :3] + pose_obs[:3, :3])
            pts = kf.points_odom.copy()
            pts[ok] = (n * pts[ok] + obs[ok]) / (n + 1)
            depth = (pts - pose[:3, 3]) @ pose[:3, 2]
            kf.points_odom = pts
            kf.depth_odom = np.where(ok, depth, kf.depth_odom)
            kf.T_odom_cam = pose
            kf.observations = n + 1
            med = _confident_median(kf.depth_odom, kf.conf, self.config.alignment.conf_threshold_ratio)
            if np.isfinite(med):
                kf.median_depth = med

    def _add_keyframe(self, fid, seq, stamp, image, pose, pts_odom, depth_odom_g, conf_g, med):
        self._keyframes.append(KeyframeRecord(fid, seq, stamp, pose.copy(), pts_odom, depth_odom_g, conf_g, med,
                                              image=image))
        keep = max(self.config.window_size - 1, 1)
        if len(self._keyframes) > keep:  # only the last N-1 keyframes can be in a window
            self._keyframes = self._keyframes[-keep:]

    def _accept(self, fid, seq, stamp, pose, s, depth, conf, K, med, *, keyframe, outcome, reason, stats):
        self._last_accepted = (seq, pose.copy(), med if np.isfinite(med) and med > 0 else self._last_accepted[2])
        self._last_scale = float(s)
        self._trajectory.append(TrajectoryEntry(fid, stamp, pose.copy(), keyframe))
        return FrameResult(
            frame_id=fid, stamp=stamp, T_odom_cam=pose, depth=(np.float32(s) * depth).astype(np.float32, copy=False),
            confidence=np.asarray(conf, np.float32), intrinsics=np.asarray(K, np.float32), keyframe=keyframe,
            outcome=outcome, scale=float(s), unit=self.unit,
            reason=reason, stats=stats,
        )

    @staticmethod
    def _stats(al: WindowAlignment) -> Dict[str, float]:
        return {
            "n_correspondences": float(al.n_correspondences),
            "inlier_ratio": al.inlier_ratio,
            "median_residual": al.median_residual,
            "scale_inconsistency": al.scale_inconsistency,
            "shared_rotation_error_deg": al.shared_rotation_error_deg,
            "shared_centre_error": al.shared_centre_error,
        }
