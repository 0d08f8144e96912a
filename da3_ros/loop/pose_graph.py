"""``PoseGraph``: keyframe poses and the relative constraints between them, optimised with gtsam.

Nodes are keyframes (``add_keyframe(key, T_map_cam)``, the tracker's pose as the initial value). Edges are
relative poses ``T_a_b`` (``inv(T_map_a) @ T_map_b``) of one :class:`EdgeKind`: ``window`` (consecutive keyframes
as the tracker aligned them), ``odometry`` (wheel odometry between the keyframes' stamps, when present) and
``loop`` (a verified revisit). Each edge has its own sigmas (rotation rad, translation in the graph's unit, log
scale) and a robust kernel (Huber on window/odometry edges, Cauchy on loops: ``DEFAULT_KERNELS``), so a wrong loop that
passed verification is down-weighted rather than bending the whole map. The first keyframe is held by a tight
prior (the map frame is the first keyframe's pose).

``metric=True``: SE(3) nodes (``gtsam.Pose3``), the map is in metres. ``metric=False``: Sim(3) nodes
(``gtsam.Similarity3``) so scale drift of an up-to-scale model is corrected too; a pose is then a 4x4
``[s R | t]`` (``p_map = s R p_local + t``), the camera's rotation is ``R`` and its centre ``t``.

The graph itself is plain Python data (``records()`` / ``from_records``: what the map file stores), so building
it costs nothing on the inference worker; :meth:`optimize` (Levenberg-Marquardt) runs on the optimiser's thread
(:mod:`da3_ros.loop.graph_optimizer`). gtsam is imported there only, with a clear error when it is missing.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Dict, Hashable, List, Optional, Sequence

import numpy as np

from da3_ros.geometry.transforms import project_to_rotation

__all__ = ["EdgeKind", "GraphEdge", "OptimizationResult", "PoseGraph", "gtsam_unavailable_reason"]


class EdgeKind(str, enum.Enum):
    WINDOW = "window"
    ODOMETRY = "odometry"
    LOOP = "loop"


#: robust kernel per edge kind by default, and its parameter (in sigmas of the whitened error). Loops: Cauchy
#: with k = 5: a true loop's residual at the drifted initial value is the accumulated drift (tens of sigmas of
#: the loop's own noise) and must keep pulling (k = 1 freezes it: measured in test_loop_core); a wrong loop's
#: is larger still and is down-weighted by ~1 / (1 + (r / k)^2)
DEFAULT_KERNELS = {EdgeKind.WINDOW: ("huber", 1.345), EdgeKind.ODOMETRY: ("huber", 1.345),
                   EdgeKind.LOOP: ("cauchy", 5.0)}
KERNELS = ("none", "huber", "cauchy")


@dataclass(frozen=True)
class GraphEdge:
    """One relative constraint ``T_a_b`` between keyframes ``a`` and ``b``."""

    a: Hashable
    b: Hashable
    T_a_b: np.ndarray
    kind: EdgeKind
    sigma_rotation: float
    sigma_translation: float
    sigma_log_scale: float = 1e-3
    kernel: str = "huber"
    kernel_k: float = 1.345


@dataclass
class OptimizationResult:
    """Optimised ``poses`` {key: 4x4}, the graph's size, the error before/after and the seconds it took."""

    poses: Dict[Hashable, np.ndarray]
    keyframes: int
    edges: int
    loops: int
    initial_error: float
    final_error: float
    iterations: int
    seconds: float
    stats: Dict[str, float] = field(default_factory=dict)


def gtsam_unavailable_reason() -> str:
    """The empty string when gtsam imports, else why not (for skips and errors)."""
    try:
        import gtsam  # noqa: F401
    except ImportError as exc:
        return f"gtsam not importable ({exc}); pip install gtsam==4.3.0 (requirements/requirements.in)"
    return ""


def _check_pose(T, name: str) -> np.ndarray:
    T = np.asarray(T, np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{name} must be a finite 4x4 matrix, got shape {T.shape}")
    return T


def _scale_of(T: np.ndarray) -> float:
    det = float(np.linalg.det(T[:3, :3]))
    if not det > 0:
        raise ValueError(f"transform must have a positive determinant (got {det})")
    return float(np.cbrt(det))


class PoseGraph:
    """Keyframe pose graph (see the module docstring)."""

    def __init__(self, metric: bool, prior_sigma: float = 1e-6):
        self.metric = bool(metric)
        self.prior_sigma = float(prior_sigma)
        self._initial: Dict[Hashable, np.ndarray] = {}
        self._order: List[Hashable] = []
        self._edges: List[GraphEdge] = []

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return len(self._order)

    @property
    def keys(self) -> List[Hashable]:
        return list(self._order)

    @property
    def edges(self) -> List[GraphEdge]:
        return list(self._edges)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._initial

    def initial_pose(self, key: Hashable) -> np.ndarray:
        return self._initial[key].copy()

    def add_keyframe(self, key: Hashable, T_map_cam: np.ndarray) -> None:
        """A node with its initial pose (the tracker's); the first node is the map's anchor."""
        if key in self._initial:
            raise ValueError(f"keyframe {key!r} is already in the pose graph")
        T = _check_pose(T_map_cam, "T_map_cam")
        if self.metric:
            T = T.copy()
            T[:3, :3] = project_to_rotation(T[:3, :3])
        self._initial[key] = T.copy()
        self._order.append(key)

    def set_initial_pose(self, key: Hashable, T_map_cam: np.ndarray) -> None:
        """Replace a node's initial value (e.g. with the last optimised pose before the next optimisation)."""
        if key not in self._initial:
            raise KeyError(key)
        self._initial[key] = _check_pose(T_map_cam, "T_map_cam").copy()

    def add_edge(self, a: Hashable, b: Hashable, T_a_b: np.ndarray, kind: EdgeKind, *, sigma_rotation: float,
                 sigma_translation: float, sigma_log_scale: float = 1e-3, kernel: Optional[str] = None,
                 kernel_k: Optional[float] = None) -> GraphEdge:
        """Add the constraint ``T_a_b`` (``a``, ``b`` already nodes; sigmas > 0; ``kernel`` None: the kind's)."""
        kind = EdgeKind(kind)
        for key in (a, b):
            if key not in self._initial:
                raise KeyError(f"keyframe {key!r} is not in the pose graph (add_keyframe first)")
        if a == b:
            raise ValueError("an edge needs two different keyframes")
        for name, value in (("sigma_rotation", sigma_rotation), ("sigma_translation", sigma_translation),
                            ("sigma_log_scale", sigma_log_scale)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        default_kernel, default_k = DEFAULT_KERNELS[kind]
        kernel = default_kernel if kernel is None else str(kernel)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        T = _check_pose(T_a_b, "T_a_b")
        _scale_of(T)
        edge = GraphEdge(a, b, T.copy(), kind, float(sigma_rotation), float(sigma_translation),
                         float(sigma_log_scale), kernel, float(default_k if kernel_k is None else kernel_k))
        self._edges.append(edge)
        return edge

    def loop_count(self) -> int:
        return sum(1 for e in self._edges if e.kind is EdgeKind.LOOP)

    # ------------------------------------------------------------------ persistence
    def records(self) -> dict:
        """Plain data (lists, floats, str keys kept as given) of the whole graph: what ``map_store`` writes."""
        return {
            "metric": self.metric,
            "prior_sigma": self.prior_sigma,
            "nodes": [{"key": k, "T_map_cam": self._initial[k].tolist()} for k in self._order],
            "edges": [{"a": e.a, "b": e.b, "T_a_b": e.T_a_b.tolist(), "kind": e.kind.value,
                       "sigma_rotation": e.sigma_rotation, "sigma_translation": e.sigma_translation,
                       "sigma_log_scale": e.sigma_log_scale, "kernel": e.kernel, "kernel_k": e.kernel_k}
                      for e in self._edges],
        }

    @classmethod
    def from_records(cls, data: dict) -> "PoseGraph":
        graph = cls(metric=bool(data["metric"]), prior_sigma=float(data.get("prior_sigma", 1e-6)))
        for node in data["nodes"]:
            graph.add_keyframe(node["key"], np.asarray(node["T_map_cam"], np.float64))
        for e in data["edges"]:
            graph.add_edge(e["a"], e["b"], np.asarray(e["T_a_b"], np.float64), EdgeKind(e["kind"]),
                           sigma_rotation=e["sigma_rotation"], sigma_translation=e["sigma_translation"],
                           sigma_log_scale=e["sigma_log_scale"], kernel=e["kernel"], kernel_k=e["kernel_k"])
        return graph

    def copy(self) -> "PoseGraph":
        """A snapshot (the optimiser thread works on one while the caller keeps adding)."""
        other = PoseGraph(self.metric, self.prior_sigma)
        other._initial = {k: v.copy() for k, v in self._initial.items()}
        other._order = list(self._order)
        other._edges = list(self._edges)   # GraphEdge is frozen
        return other

    # ------------------------------------------------------------------ optimisation
    def optimize(self, max_iterations: int = 100) -> OptimizationResult:
        """Levenberg-Marquardt over every node and edge; the optimised poses (module docstring)."""
        reason = gtsam_unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        import gtsam

        if not self._order:
            raise ValueError("the pose graph has no keyframe")
        t0 = time.perf_counter()
        symbol = {k: gtsam.symbol("k", i) for i, k in enumerate(self._order)}
        graph = gtsam.NonlinearFactorGraph()
        initial = gtsam.Values()
        first = self._order[0]
        dim = 6 if self.metric else 7
        prior_noise = gtsam.noiseModel.Isotropic.Sigma(dim, self.prior_sigma)
        if self.metric:
            graph.add(gtsam.PriorFactorPose3(symbol[first], self._to_gtsam(self._initial[first]), prior_noise))
        else:
            graph.add(gtsam.PriorFactorSimilarity3(symbol[first], self._to_gtsam(self._initial[first]), prior_noise))
        for key in self._order:
            initial.insert(symbol[key], self._to_gtsam(self._initial[key]))
        between = gtsam.BetweenFactorPose3 if self.metric else gtsam.BetweenFactorSimilarity3
        for e in self._edges:
            graph.add(between(symbol[e.a], symbol[e.b], self._to_gtsam(e.T_a_b), self._noise(e)))
        params = gtsam.LevenbergMarquardtParams()
        params.setMaxIterations(int(max_iterations))
        optimizer = gtsam.LevenbergMarquardtOptimizer(graph, initial, params)
        initial_error = float(graph.error(initial))
        values = optimizer.optimize()
        poses = {k: self._from_gtsam(values, symbol[k]) for k in self._order}
        return OptimizationResult(poses=poses, keyframes=len(self._order), edges=len(self._edges),
                                  loops=self.loop_count(), initial_error=initial_error,
                                  final_error=float(graph.error(values)), iterations=int(optimizer.iterations()),
                                  seconds=time.perf_counter() - t0)

    def _noise(self, e: GraphEdge):
        import gtsam

        sigmas = [e.sigma_rotation] * 3 + [e.sigma_translation] * 3 + ([] if self.metric else [e.sigma_log_scale])
        base = gtsam.noiseModel.Diagonal.Sigmas(np.asarray(sigmas, np.float64))
        if e.kernel == "none":
            return base
        estimator = (gtsam.noiseModel.mEstimator.Huber if e.kernel == "huber"
                     else gtsam.noiseModel.mEstimator.Cauchy).Create(e.kernel_k)
        return gtsam.noiseModel.Robust.Create(estimator, base)

    def _to_gtsam(self, T: np.ndarray):
        import gtsam

        if self.metric:
            T = T.copy()
            T[:3, :3] = project_to_rotation(T[:3, :3])
            return gtsam.Pose3(T)
        s = _scale_of(T)
        R = project_to_rotation(T[:3, :3] / s)
        return gtsam.Similarity3(gtsam.Rot3(R), T[:3, 3] / s, s)   # gtsam: p -> s (R p + t)

    def _from_gtsam(self, values, symbol) -> np.ndarray:
        if self.metric:
            return np.asarray(values.atPose3(symbol).matrix(), np.float64)
        M = np.asarray(values.atSimilarity3(symbol).matrix(), np.float64)   # [R t; 0 1/s]
        s = 1.0 / M[3, 3]
        T = np.eye(4)
        T[:3, :3] = s * M[:3, :3]
        T[:3, 3] = s * M[:3, 3]
        return T


def relative_pose(T_map_a: np.ndarray, T_map_b: np.ndarray) -> np.ndarray:
    """``inv(T_map_a) @ T_map_b`` for SE(3) or Sim(3) 4x4 matrices."""
    return np.linalg.solve(np.asarray(T_map_a, np.float64), np.asarray(T_map_b, np.float64))


def similarity(R: np.ndarray, t: Sequence[float], s: float = 1.0) -> np.ndarray:
    """The 4x4 ``[s R | t]``."""
    T = np.eye(4)
    T[:3, :3] = float(s) * np.asarray(R, np.float64)
    T[:3, 3] = np.asarray(t, np.float64)
    return T
