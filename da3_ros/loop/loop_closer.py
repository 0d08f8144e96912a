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
import time
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
    #: plausibility gate of a map update (a re-relocalisation once relocalised): a new T_map_odom that moves the
    #: newest keyframe's camera from where the current correction puts it by more than the verification's own
    #: error (``max_correction_jump`` x median depth, ``max_correction_jump_deg``) plus the odometry's drift since
    #: the last applied correction (``correction_drift_fraction`` of the path travelled, ``correction_drift_deg``
    #: per median depth travelled) is refused ("implausible_jump") unless the next verification agrees with the
    #: refused one within the same bound (then the newer one is applied). notes/loop.md has the measurements
    max_correction_jump: float = 0.04
    max_correction_jump_deg: float = 2.0
    correction_drift_fraction: float = 0.1
    correction_drift_deg: float = 20.0
    #: the verification store's bound (keyframes whose network image, points, depth and confidence are kept for
    #: verification; notes/loop.md has the bytes per keyframe). Beyond it the most redundant stored keyframe
    #: (the smallest distance to another stored one: centre / median depth + optical-axis angle in rad) leaves
    #: the store; it stays in the graph and the descriptor database
    verification_capacity: int = 500
    max_iterations: int = 100


@dataclass(frozen=True)
class LoopEvent:
    """What one keyframe's loop step did: ``kind`` "loop" / "relocalised" / "rejected", the pair and details."""

    kind: str
    query_id: Hashable
    candidate_id: Hashable
    reason: str = ""
    similarity: float = float("nan")
    #: a map update's move of the newest camera (x median depth) relative to the previous correction
    jump: float = float("nan")


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
        self._held_update: Optional[np.ndarray] = None     # a refused (implausible) T_map_odom awaiting confirmation
        self._stale_up_to = 0      # optimisation results of graphs with <= this many nodes predate a relocalisation
        self._stale_results = 0
        self._stored: List[Hashable] = []     # keyframes with a verification payload (bounded), in order
        self._path = 0.0                      # odometry-frame path of the keyframes' cameras (odometry units)
        self._path_at_update = 0.0            # ... when the correction was last set by a relocalisation
        self._search_ms: List[float] = []
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
                    "loaded_map": self.loaded_path, "relocalisation_ratio": self.relocalisation_ratio,
                    "verification_keyframes": len(self._stored), "stale_optimisations": self._stale_results,
                    "last_search_ms": self._search_ms[-1] if self._search_ms else 0.0}

    def search_ms(self) -> List[float]:
        """Every descriptor search's wall time (ms, own and loaded map's), in order (bench/bench_loop.py)."""
        with self._lock:
            return list(self._search_ms)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Test-facing: wait until the optimiser has applied every requested optimisation (False on timeout).

        The node never calls it (results are applied when they arrive). In-process evidence calls it after each
        frame so that its numbers do not depend on when the optimiser thread finishes relative to the frames."""
        return self.optimizer.wait_idle(timeout)

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
        for k in self._stored:
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
            self._stored.append(key)
        self._bound_store()
        self._odometry[key] = None if T_odometry_cam is None else np.asarray(T_odometry_cam, np.float64)
        if previous is None:
            return
        prev = self._keyframes[previous]
        d = kf.median_depth
        self._path += float(np.linalg.norm(kf.T_map_cam[:3, 3] - prev.T_map_cam[:3, 3]))
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

    def _bound_store(self) -> None:
        """Evict the most redundant stored keyframe while the store is over ``verification_capacity`` (never
        one of the newest ``views``: the next verifications' own neighbours). Its entry keeps pose and median
        depth (graph, map poses) without image, points, depth and confidence."""
        capacity = max(int(self.config.verification_capacity), self.views)
        while len(self._stored) > capacity:
            keys = self._stored
            T = np.stack([self._keyframes[k].T_map_cam for k in keys])
            depth = np.array([self._keyframes[k].median_depth for k in keys])
            centre = np.linalg.norm(T[:, None, :3, 3] - T[None, :, :3, 3], axis=-1) / depth[:, None]
            axes = T[:, :3, 2]
            angle = np.arccos(np.clip(axes @ axes.T, -1.0, 1.0))
            distance = centre + angle
            np.fill_diagonal(distance, np.inf)
            nearest = distance.min(axis=1)[: len(keys) - self.views]
            victim = keys[int(np.argmin(nearest))]     # ties: the oldest (argmin's first)
            kf = self._keyframes[victim]
            with self._lock:
                self._keyframes[victim] = LoopKeyframe(victim, kf.stamp, None, kf.T_map_cam, np.zeros((0, 3)),
                                                       np.zeros(0), np.zeros(0), kf.median_depth)
                self._stored.remove(victim)

    def _search(self, database: KeyframeDatabase, store: Dict[Hashable, LoopKeyframe], descriptor: np.ndarray,
                stamp: float, min_time_gap_s: float):
        """The best candidate with a verification payload (``top_k`` search), or None; the search is timed."""
        cfg = self.config
        t = time.perf_counter()
        found = database.query(descriptor, stamp, min_time_gap_s=min_time_gap_s, top_k=cfg.top_k,
                               min_similarity=cfg.min_similarity)
        ms = 1e3 * (time.perf_counter() - t)
        with self._lock:
            self._search_ms.append(ms)
        return next((c for c in found if c.keyframe_id in store and store[c.keyframe_id].image is not None), None)

    def _neighbours(self, order: List[Hashable], store: Dict[Hashable, LoopKeyframe], candidate: Hashable,
                    exclude_after: Optional[float]) -> Optional[List[LoopKeyframe]]:
        """[candidate, then its nearest keyframes in order (after, before, ...)]: views - 1 of them, or None."""
        i = order.index(candidate)
        picked = [candidate]
        for step in range(1, len(order)):
            for j in (i + step, i - step):
                if 0 <= j < len(order) and len(picked) < self.views - 1:
                    kid = order[j]
                    if store[kid].image is not None and (exclude_after is None or store[kid].stamp <= exclude_after):
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
        best = self._search(self.database, self._keyframes, descriptor, kf.stamp, cfg.min_time_gap_s)
        if best is None:    # one verification per keyframe (the rate limit)
            return None
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
        best = self._search(self.loaded.database, self._loaded_keyframes, descriptor, float("inf"), 0.0)
        if best is None:
            return None
        candidates = self._neighbours(self._loaded_order, self._loaded_keyframes, best.keyframe_id, None)
        if candidates is None:
            return None
        result, ratio = self._verify(kf, candidates, loaded=True)
        if not result.ok:
            self._count(result)
            return LoopEvent("rejected", kf.keyframe_id, best.keyframe_id, "relocalisation: " + result.reason,
                             best.similarity)
        self._relocalisation_samples.append((rigid_part(result.T_map_query), kf.T_map_cam, ratio, kf.median_depth))
        fused = self._fused_relocalisation()
        if fused is None:
            self._count(result)
            return LoopEvent("verified", kf.keyframe_id, best.keyframe_id, "waiting for agreeing verifications",
                             best.similarity)
        T_map_odom, ratio = fused
        jump, refused = self._plausible(kf, T_map_odom)
        if refused:
            self._count(LoopVerification(False, "implausible_jump", kf.keyframe_id, best.keyframe_id))
            return LoopEvent("rejected", kf.keyframe_id, best.keyframe_id, refused, best.similarity, jump)
        self._count(result)
        with self._lock:
            first = not self._relocalised
            self._T_map_odom = T_map_odom
            self._corrections = {k: T_map_odom.copy() for k in self._order}
            self._relocalised = True
            self.relocalisation_ratio = ratio
            self._stale_up_to = len(self._order)    # optimisations requested before this are in the old frame
        for k in self._order:
            self.graph.set_initial_pose(k, T_map_odom @ self._keyframes[k].T_map_cam)
        if self.on_correction is not None:
            self.on_correction(self.keyframe_corrections())
        return LoopEvent("relocalised" if first else "map_update", kf.keyframe_id, best.keyframe_id, "",
                         best.similarity, jump)

    def _plausible(self, kf: LoopKeyframe, T_map_odom: np.ndarray):
        """(jump, refusal reason or ""): a map update is refused when it moves the keyframe's camera beyond the
        ``max_correction_jump`` bounds from the current correction, unless the previously refused update agrees
        with it within the same bounds (a second consistent verification). The first relocalisation passes."""
        cfg = self.config
        with self._lock:
            if not self._relocalised:
                self._path_at_update = self._path
                return float("nan"), ""
            current = self._T_map_odom.copy()

        def move(A, B):
            a, b = A @ kf.T_map_cam, B @ kf.T_map_cam
            return (float(np.linalg.norm(a[:3, 3] - b[:3, 3])) / kf.median_depth,
                    float(np.degrees(rotation_angle(a[:3, :3].T @ b[:3, :3]))))

        def bound(path):
            path /= kf.median_depth
            return (cfg.max_correction_jump + cfg.correction_drift_fraction * path,
                    cfg.max_correction_jump_deg + cfg.correction_drift_deg * path)

        def within(m, b):
            return m[0] <= b[0] and m[1] <= b[1]

        jump, allowed = move(current, T_map_odom), bound(self._path - self._path_at_update)
        held, self._held_update = self._held_update, None
        confirmed = held is not None and within(move(held[0], T_map_odom), bound(self._path - held[1]))
        if within(jump, allowed) or confirmed:
            self._path_at_update = self._path
            return jump[0], ""
        self._held_update = (T_map_odom, self._path)
        self._relocalisation_samples.clear()
        return jump[0], (f"implausible_jump: {jump[0]:.3f} x depth / {jump[1]:.2f} deg from the current correction "
                         f"(bound {allowed[0]:.3f} / {allowed[1]:.2f} deg)")

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
        with self._lock:
            if result.keyframes <= self._stale_up_to:    # its graph predates a relocalisation's new frame
                self._stale_results += 1
                return
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
