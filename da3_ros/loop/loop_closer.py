"""``LoopCloser``: keyframes in -> verified loops -> pose graph -> the map correction ``T_map_odom`` (ROS-free).

The window processor hands every accepted keyframe to :meth:`LoopCloser.add_keyframe` on the inference worker
(notes/loop.md has the design). Per keyframe, on the worker:

1. the keyframe becomes a graph node (initial value: the current correction @ its odometry pose) with a
   ``window`` edge to the previous keyframe (the tracker's relative pose) and, when the robot odometry is known
   at both stamps together with the camera mount and the metric scale, an ``odometry`` edge;
2. its descriptor searches the older keyframes (``KeyframeDatabase.query``: at least ``min_time_gap_s`` older,
   ``top_k``, ``min_similarity``); the best candidate (at most ONE verification per keyframe: the rate limit) is
   verified by one extra inference of [candidate + neighbouring keyframes + query] (``LoopVerifier``);
3. an accepted loop adds a ``loop`` edge and hands a snapshot of the graph to the optimiser thread
   (``PoseGraphOptimizer``: never on the worker, newest request wins); nothing waits for it.

When a result arrives (optimiser thread) it becomes the correction and the corrected keyframe poses at once
(under the lock): ``T_map_odom`` is the rigid transform that puts the newest optimised keyframe at its optimised
pose (rotation and centre; a Sim(3) node's scale stays in the per-keyframe corrections of the map), and
``on_correction`` gets every keyframe's correction (the map thread rebuilds ``map_points`` from them).

A loaded map (``SavedMap`` with its verification keyframes) is searched as well until the robot relocalises in
it: then the correction puts the odometry frame into the old map (``relocalised``).

Units: the odometry frame's (as the trajectory); a loaded map in metres is converted with the verified depth
ratio. Frames: ``map`` is the first keyframe's odometry frame (identity correction until the first loop), or
the loaded map's frame after a relocalisation.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, List, Optional

import numpy as np

from da3_ros.geometry.transforms import rotation_angle

from .graph_optimizer import PoseGraphOptimizer
from .keyframe_database import KeyframeDatabase
from .loop_verification import LoopKeyframe, LoopVerification, LoopVerifier, VerificationConfig
from .pose_graph import EdgeKind, OptimizationResult, PoseGraph, relative_pose

__all__ = ["LoopCloser", "LoopClosureConfig", "LoopEvent", "rigid_part"]

Predict = Callable[[np.ndarray], object]


@dataclass(frozen=True)
class LoopClosureConfig:
    """Search, verification and graph settings; translation sigmas are fractions of the keyframe's median
    depth (scene-relative, so they hold in any odometry unit)."""

    min_time_gap_s: float = 8.0
    top_k: int = 3
    min_similarity: float = 0.8
    window_sigma_rotation: float = 0.01      # rad
    window_sigma_translation: float = 0.01   # x median depth
    window_sigma_log_scale: float = 0.01
    odometry_sigma_rotation: float = 0.02
    odometry_sigma_translation: float = 0.02
    loop_sigma_rotation: float = 0.005
    loop_sigma_translation: float = 0.005
    loop_sigma_log_scale: float = 0.01
    #: pose_graph.KERNELS; also the odometry edges'. "none" (Gaussian): a biased chain's correction is spread
    #: evenly over its edges; a Huber kernel acts like L1 there and packs it into a few edges (measured on the
    #: 8 deg/m loop world: keyframe orientations off by up to 9 deg with Huber, 4 deg without)
    window_kernel: str = "none"
    loop_kernel: str = "cauchy"
    #: relocalisation: not before this many keyframes of the drive (the first keyframe's window holds no other
    #: keyframe: its verification is ~10 cm off); T_map_odom is fused from the last ``relocalisation_verifications``
    #: verified keyframes, which must agree within these bounds (x median depth, deg). One: each verified keyframe
    #: re-relocalises (the odometry's own drift between keyframes makes older verifications disagree)
    relocalisation_min_keyframes: int = 2
    relocalisation_verifications: int = 1
    relocalisation_max_centre_error: float = 0.05
    relocalisation_max_rotation_deg: float = 3.0
    max_iterations: int = 100


@dataclass(frozen=True)
class LoopEvent:
    """What one keyframe's loop step did: ``kind`` "loop" / "relocalised" / "rejected", the pair and details."""

    kind: str
    query_id: Hashable
    candidate_id: Hashable
    reason: str = ""
    similarity: float = float("nan")


def rigid_part(T: np.ndarray) -> np.ndarray:
    """The SE(3) pose (rotation, centre) of an SE(3) or Sim(3) ``[s R | t]`` 4x4."""
    T = np.asarray(T, np.float64)
    s = float(np.cbrt(np.linalg.det(T[:3, :3])))
    out = np.eye(4)
    out[:3, :3] = T[:3, :3] / s
    out[:3, 3] = T[:3, 3]
    return out


def _with_scale(T: np.ndarray, s: float) -> np.ndarray:
    out = np.asarray(T, np.float64).copy()
    out[:3, :3] *= float(s)
    return out


class LoopCloser:
    """See the module docstring. ``metric``: SE(3) graph (metres), else Sim(3). ``predict(images)``: the
    backend's prediction of an (N, h, w, 3) window (the processor's backend, called on the worker)."""

    def __init__(self, views: int, metric: bool, predict: Predict, config: Optional[LoopClosureConfig] = None,
                 verification: Optional[VerificationConfig] = None,
                 on_correction: Optional[Callable[[Dict[Hashable, np.ndarray]], None]] = None,
                 loaded=None, loaded_keyframes: Optional[List[LoopKeyframe]] = None, loaded_path: str = ""):
        self.views = int(views)
        self.metric = bool(metric)
        self.predict = predict
        self.config = config if config is not None else LoopClosureConfig()
        self.verifier = LoopVerifier(verification)
        self.on_correction = on_correction
        self.database = KeyframeDatabase()
        self.graph = PoseGraph(metric=self.metric)
        self._keyframes: Dict[Hashable, LoopKeyframe] = {}    # odometry frame (the tracker's poses)
        self._order: List[Hashable] = []
        self._odometry: Dict[Hashable, Optional[np.ndarray]] = {}   # T_odometry_base @ T_base_cam (metres)
        self._intrinsics: Dict[Hashable, np.ndarray] = {}            # network K of each keyframe (pixel centres)
        self._lock = threading.Lock()
        self._T_map_odom = np.eye(4)
        self._corrections: Dict[Hashable, np.ndarray] = {}    # keyframe -> T_map_kf @ inv(T_odom_kf)
        self._pending: Optional[OptimizationResult] = None    # applied to the graph's initial values on the worker
        self._candidates = 0
        self._accepted = 0
        self._rejected: Dict[str, int] = {}
        self._relocalised = False
        self.events: List[LoopEvent] = []
        self.loaded = loaded
        self.loaded_path = str(loaded_path)
        self._loaded_keyframes = {kf.keyframe_id: kf for kf in (loaded_keyframes or [])}
        self._loaded_order = [kf.keyframe_id for kf in (loaded_keyframes or [])]
        self.relocalisation_ratio = float("nan")
        self._relocalisation_samples: List[tuple] = []    # (T_map_query map units, T_odom_query, ratio, depth)
        self.optimizer = PoseGraphOptimizer(self._on_result, max_iterations=self.config.max_iterations)

    # -- thread-safe views ---------------------------------------------------------------------
    def correction(self) -> np.ndarray:
        """``T_map_odom`` (4x4 rigid, odometry units)."""
        with self._lock:
            return self._T_map_odom.copy()

    def keyframe_corrections(self) -> Dict[Hashable, np.ndarray]:
        """Each keyframe's ``T_map_kf @ inv(T_odom_kf)`` (keyframes added since the last result: the correction)."""
        with self._lock:
            out = {k: v.copy() for k, v in self._corrections.items()}
            for k in self._order:
                out.setdefault(k, self._T_map_odom.copy())
            return out

    def stats(self) -> dict:
        opt = self.optimizer.stats()
        with self._lock:
            return {"loop_candidates": self._candidates, "loop_accepted": self._accepted,
                    "loop_rejected": dict(self._rejected),
                    "last_optimisation_ms": float(opt.get("last_optimisation_ms", 0.0)),
                    "last_optimisation_keyframes": int(opt.get("last_optimisation_keyframes", 0)),
                    "map_keyframes": len(self._order), "relocalised": self._relocalised,
                    "loaded_map": self.loaded_path, "relocalisation_ratio": self.relocalisation_ratio}

    @property
    def relocalised(self) -> bool:
        with self._lock:
            return self._relocalised

    def map_poses(self) -> Dict[Hashable, np.ndarray]:
        """Every keyframe's corrected camera pose ``T_map_cam`` (SE(3) part), in keyframe order."""
        corrections = self.keyframe_corrections()
        return {k: rigid_part(corrections[k] @ self._keyframes[k].T_map_cam) for k in self._order}

    def keyframes_in_map(self) -> List[LoopKeyframe]:
        """The verification keyframes with their points and poses in the map frame (for the saved map)."""
        corrections = self.keyframe_corrections()
        out = []
        for k in self._order:
            kf, C = self._keyframes[k], corrections[k]
            s = float(np.cbrt(np.linalg.det(C[:3, :3])))
            out.append(LoopKeyframe(k, kf.stamp, kf.image, rigid_part(C @ kf.T_map_cam),
                                    kf.points_map @ C[:3, :3].T + C[:3, 3], kf.depth * s, kf.conf,
                                    kf.median_depth * s))
        return out

    def close(self) -> None:
        self.optimizer.close()

    # -- the worker's step ---------------------------------------------------------------------
    def add_keyframe(self, keyframe_id: Hashable, stamp: float, image: np.ndarray, T_odom_cam: np.ndarray,
                     depth: np.ndarray, conf: np.ndarray, K: np.ndarray, descriptor: np.ndarray,
                     T_odometry_cam: Optional[np.ndarray] = None,
                     metres_per_unit: Optional[float] = None) -> Optional[LoopEvent]:
        """One accepted keyframe (odometry frame, odometry units; ``T_odometry_cam``: the robot odometry's camera
        pose at its stamp in metres, or None). Returns what the loop step did (None: nothing proposed)."""
        self._apply_pending()
        kf = self.verifier.keyframe(keyframe_id, stamp, image, T_odom_cam, depth, conf, K)
        self._intrinsics[keyframe_id] = np.asarray(K, np.float64)
        if not np.isfinite(kf.median_depth):
            return None
        self._add_node(kf, T_odometry_cam, metres_per_unit)
        event = None
        if self.loaded is not None and len(self._order) >= self.config.relocalisation_min_keyframes:
            # every keyframe re-relocalises against the loaded map (the odometry's drift)
            event = self._relocalise(kf, descriptor)
        if event is None:
            event = self._close_loop(kf, descriptor)
        self.database.add(keyframe_id, stamp, descriptor, self.correction() @ kf.T_map_cam)
        if event is not None:
            self.events.append(event)
        return event

    def _apply_pending(self) -> None:
        with self._lock:
            result, self._pending = self._pending, None
        if result is None:
            return
        for key, T in result.poses.items():
            self.graph.set_initial_pose(key, T)
            self.database.set_pose(key, rigid_part(T))

    def _add_node(self, kf: LoopKeyframe, T_odometry_cam: Optional[np.ndarray],
                  metres_per_unit: Optional[float]) -> None:
        cfg = self.config
        key = kf.keyframe_id
        previous = self._order[-1] if self._order else None
        self.graph.add_keyframe(key, self.correction() @ kf.T_map_cam)
        with self._lock:
            self._keyframes[key] = kf
            self._order.append(key)
        self._odometry[key] = None if T_odometry_cam is None else np.asarray(T_odometry_cam, np.float64)
        if previous is None:
            return
        prev = self._keyframes[previous]
        d = kf.median_depth
        self.graph.add_edge(previous, key, relative_pose(prev.T_map_cam, kf.T_map_cam), EdgeKind.WINDOW,
                            sigma_rotation=cfg.window_sigma_rotation,
                            sigma_translation=cfg.window_sigma_translation * d,
                            sigma_log_scale=cfg.window_sigma_log_scale, kernel=cfg.window_kernel)
        a, b = self._odometry.get(previous), self._odometry[key]
        if a is not None and b is not None and metres_per_unit:
            T = relative_pose(a, b)
            T[:3, 3] /= float(metres_per_unit)     # metres -> odometry units
            self.graph.add_edge(previous, key, T, EdgeKind.ODOMETRY, sigma_rotation=cfg.odometry_sigma_rotation,
                                sigma_translation=cfg.odometry_sigma_translation * d, sigma_log_scale=1.0,
                                kernel=cfg.window_kernel)

    def _neighbours(self, order: List[Hashable], store: Dict[Hashable, LoopKeyframe], candidate: Hashable,
                    exclude_after: Optional[float]) -> Optional[List[LoopKeyframe]]:
        """[candidate, then its nearest keyframes in order (after, before, ...)]: views - 1 of them, or None."""
        i = order.index(candidate)
        picked = [candidate]
        for step in range(1, len(order)):
            for j in (i + step, i - step):
                if 0 <= j < len(order) and len(picked) < self.views - 1:
                    kid = order[j]
                    if exclude_after is None or store[kid].stamp <= exclude_after:
                        picked.append(kid)
            if len(picked) == self.views - 1:
                return [store[k] for k in picked]
        return None

    def _verify(self, kf: LoopKeyframe, candidates: List[LoopKeyframe], loaded: bool = False):
        """The verification and the candidates' units per query unit (the Sim(3) loop edge's scale); a loaded
        map's keyframes are seen with the query's camera."""
        captured = {}

        def predict(images):
            captured["prediction"] = prediction = self.predict(images)
            return prediction

        K_query = self._intrinsics[kf.keyframe_id]
        K = np.stack([K_query if loaded else self._intrinsics[c.keyframe_id] for c in candidates] + [K_query])
        result = self.verifier.verify(kf.keyframe_id, kf.image, candidates, predict, K)
        ratio = float("nan")
        if result.ok:
            depth = np.asarray(captured["prediction"].depth[-1], np.float64)
            valid = depth[np.isfinite(depth) & (depth > 0)]
            ratio = float(np.median(valid)) * result.scale / kf.median_depth   # candidate units per query unit
        return result, ratio

    def _count(self, result: LoopVerification) -> None:
        with self._lock:
            self._candidates += 1
            if result.ok:
                self._accepted += 1
            else:
                reason = result.reason.split(":", 1)[0]
                self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def _close_loop(self, kf: LoopKeyframe, descriptor: np.ndarray) -> Optional[LoopEvent]:
        cfg = self.config
        found = self.database.query(descriptor, kf.stamp, min_time_gap_s=cfg.min_time_gap_s, top_k=cfg.top_k,
                                    min_similarity=cfg.min_similarity)
        if not found:
            return None
        best = found[0]    # one verification per keyframe (the rate limit)
        candidates = self._neighbours(self._order, self._keyframes, best.keyframe_id,
                                      kf.stamp - cfg.min_time_gap_s)
        if candidates is None:
            return None
        result, ratio = self._verify(kf, candidates)
        self._count(result)
        if not result.ok:
            return LoopEvent("rejected", kf.keyframe_id, best.keyframe_id, result.reason, best.similarity)
        T = result.T_candidate_query if self.metric else _with_scale(result.T_candidate_query, ratio)
        d = self._keyframes[best.keyframe_id].median_depth
        self.graph.add_edge(best.keyframe_id, kf.keyframe_id, T, EdgeKind.LOOP,
                            sigma_rotation=cfg.loop_sigma_rotation, sigma_translation=cfg.loop_sigma_translation * d,
                            sigma_log_scale=cfg.loop_sigma_log_scale, kernel=cfg.loop_kernel)
        self.optimizer.request(self.graph)
        return LoopEvent("loop", kf.keyframe_id, best.keyframe_id, "", best.similarity)

    def _relocalise(self, kf: LoopKeyframe, descriptor: np.ndarray) -> Optional[LoopEvent]:
        cfg = self.config
        found = self.loaded.database.query(descriptor, float("inf"), min_time_gap_s=0.0, top_k=cfg.top_k,
                                           min_similarity=cfg.min_similarity)
        if not found or found[0].keyframe_id not in self._loaded_keyframes:
            return None
        best = found[0]
        candidates = self._neighbours(self._loaded_order, self._loaded_keyframes, best.keyframe_id, None)
        if candidates is None:
            return None
        result, ratio = self._verify(kf, candidates, loaded=True)
        self._count(result)
        if not result.ok:
            return LoopEvent("rejected", kf.keyframe_id, best.keyframe_id, "relocalisation: " + result.reason,
                             best.similarity)
        self._relocalisation_samples.append((rigid_part(result.T_map_query), kf.T_map_cam, ratio, kf.median_depth))
        fused = self._fused_relocalisation()
        if fused is None:
            return LoopEvent("verified", kf.keyframe_id, best.keyframe_id, "waiting for agreeing verifications",
                             best.similarity)
        T_map_odom, ratio = fused
        with self._lock:
            first = not self._relocalised
            self._T_map_odom = T_map_odom
            self._corrections = {k: T_map_odom.copy() for k in self._order}
            self._relocalised = True
            self.relocalisation_ratio = ratio
        for k in self._order:
            self.graph.set_initial_pose(k, T_map_odom @ self._keyframes[k].T_map_cam)
        if self.on_correction is not None:
            self.on_correction(self.keyframe_corrections())
        return LoopEvent("relocalised" if first else "map_update", kf.keyframe_id, best.keyframe_id, "",
                         best.similarity)

    def _fused_relocalisation(self):
        """(T_map_odom, ratio) fused from the last ``relocalisation_verifications`` verified keyframes, or None
        while there are fewer or they disagree (the oldest is then dropped). Ratio: their median; rotation: the
        chordal mean of each one's ``R_map_query R_odom_query^T``; translation: the mean that puts their centres
        (old map / ratio) onto their odometry centres."""
        cfg = self.config
        n = max(1, int(cfg.relocalisation_verifications))
        samples = self._relocalisation_samples = self._relocalisation_samples[-n:]
        if len(samples) < n:
            return None
        ratio = float(np.median([r for _, _, r, _ in samples]))
        M = sum(Q[:3, :3] @ O[:3, :3].T for Q, O, _, _ in samples)
        U, _, Vt = np.linalg.svd(M)
        R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
        t = np.mean([Q[:3, 3] / ratio - R @ O[:3, 3] for Q, O, _, _ in samples], axis=0)
        for Q, O, _, d in samples:
            centre = float(np.linalg.norm(R @ O[:3, 3] + t - Q[:3, 3] / ratio)) / d
            rotation = float(np.degrees(rotation_angle((R @ O[:3, :3]).T @ Q[:3, :3])))
            if centre > cfg.relocalisation_max_centre_error or rotation > cfg.relocalisation_max_rotation_deg:
                samples.pop(0)
                return None
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, t
        return T, ratio

    # -- the optimiser thread --------------------------------------------------------------------
    def _on_result(self, result: OptimizationResult) -> None:
        newest = None
        corrections = {}
        for key, T in result.poses.items():
            kf = self._keyframes.get(key)
            if kf is None:
                continue
            corrections[key] = T @ np.linalg.inv(kf.T_map_cam)
            newest = key
        if newest is None:
            return
        T_map_odom = rigid_part(result.poses[newest]) @ np.linalg.inv(self._keyframes[newest].T_map_cam)
        with self._lock:
            self._T_map_odom = T_map_odom
            self._corrections = corrections
            self._pending = result
        if self.on_correction is not None:
            self.on_correction(self.keyframe_corrections())
