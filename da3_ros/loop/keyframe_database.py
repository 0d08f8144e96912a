"""``KeyframeDatabase``: the keyframes' place-recognition descriptors and the search over them.

Each keyframe is added once with its id, stamp (seconds), descriptor (D,) and pose (``T_map_cam``, 4x4, kept for
the map file and for the caller; the search does not read it). ``query`` scores every keyframe older than
``stamp - min_time_gap_s`` by cosine similarity (descriptors are L2-normalised on ``add``, so one float32
matrix-vector product) and returns the ``top_k`` best above ``min_similarity``, best first. Storage is one
growing (capacity doubling) float32 matrix, so a query at 2000 keyframes of D = 384 costs well under a
millisecond (bench/bench_keyframe_search.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, List, Optional

import numpy as np

__all__ = ["KeyframeDatabase", "LoopCandidate"]


@dataclass(frozen=True)
class LoopCandidate:
    """A keyframe the query may be a revisit of: its id, stamp and cosine similarity to the query."""

    keyframe_id: Hashable
    stamp: float
    similarity: float


def _unit(descriptor: np.ndarray, dim: Optional[int]) -> np.ndarray:
    d = np.asarray(descriptor, dtype=np.float32).reshape(-1)
    if dim is not None and d.shape[0] != dim:
        raise ValueError(f"descriptor must have D = {dim} entries, got {d.shape[0]}")
    if not np.all(np.isfinite(d)):
        raise ValueError("descriptor must be finite")
    norm = float(np.linalg.norm(d))
    if norm < 1e-12:
        raise ValueError("descriptor must not be zero")
    return d / np.float32(norm)


class KeyframeDatabase:
    """Descriptors, stamps and poses of the keyframes, searchable by cosine similarity (module docstring)."""

    def __init__(self, initial_capacity: int = 256):
        self._capacity = max(int(initial_capacity), 1)
        self._descriptors: Optional[np.ndarray] = None   # (capacity, D) float32
        self._stamps = np.zeros(self._capacity, np.float64)
        self._poses = np.zeros((self._capacity, 4, 4), np.float64)
        self._ids: List[Hashable] = []
        self._index = {}

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def dim(self) -> Optional[int]:
        """Descriptor length D (None before the first keyframe)."""
        return None if self._descriptors is None else int(self._descriptors.shape[1])

    @property
    def ids(self) -> List[Hashable]:
        return list(self._ids)

    def __contains__(self, keyframe_id: Hashable) -> bool:
        return keyframe_id in self._index

    def add(self, keyframe_id: Hashable, stamp: float, descriptor: np.ndarray, T_map_cam: np.ndarray) -> None:
        """Add one keyframe (ids unique; the descriptor is normalised; all descriptors have one length)."""
        if keyframe_id in self._index:
            raise ValueError(f"keyframe {keyframe_id!r} is already in the database")
        d = _unit(descriptor, self.dim)
        T = np.asarray(T_map_cam, np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"T_map_cam must be a finite 4x4 matrix, got shape {T.shape}")
        n = len(self._ids)
        if self._descriptors is None:
            self._descriptors = np.zeros((self._capacity, d.shape[0]), np.float32)
        if n == self._capacity:
            self._grow()
        self._descriptors[n] = d
        self._stamps[n] = float(stamp)
        self._poses[n] = T
        self._index[keyframe_id] = n
        self._ids.append(keyframe_id)

    def set_pose(self, keyframe_id: Hashable, T_map_cam: np.ndarray) -> None:
        """Replace a keyframe's pose (after a pose-graph optimisation)."""
        self._poses[self._index[keyframe_id]] = np.asarray(T_map_cam, np.float64)

    def pose(self, keyframe_id: Hashable) -> np.ndarray:
        return self._poses[self._index[keyframe_id]].copy()

    def stamp(self, keyframe_id: Hashable) -> float:
        return float(self._stamps[self._index[keyframe_id]])

    def descriptor(self, keyframe_id: Hashable) -> np.ndarray:
        return self._descriptors[self._index[keyframe_id]].copy()

    def arrays(self):
        """(ids, stamps (K,), descriptors (K, D) float32, poses (K, 4, 4)) copies, in insertion order."""
        n = len(self._ids)
        desc = np.zeros((0, 0), np.float32) if self._descriptors is None else self._descriptors[:n].copy()
        return list(self._ids), self._stamps[:n].copy(), desc, self._poses[:n].copy()

    def query(self, descriptor: np.ndarray, stamp: float, *, min_time_gap_s: float, top_k: int = 3,
              min_similarity: float = -1.0) -> List[LoopCandidate]:
        """The ``top_k`` keyframes most similar to ``descriptor`` among those at least ``min_time_gap_s`` older
        than ``stamp`` (and with similarity >= ``min_similarity``), best first."""
        n = len(self._ids)
        if n == 0 or top_k < 1:
            return []
        q = _unit(descriptor, self.dim)
        eligible = int(np.searchsorted(self._stamps[:n], float(stamp) - float(min_time_gap_s), side="right")) \
            if self._stamps_sorted(n) else n
        if eligible == 0:
            return []
        scores = self._descriptors[:eligible] @ q
        if not self._stamps_sorted(n):
            scores = np.where(self._stamps[:eligible] <= float(stamp) - float(min_time_gap_s), scores, -np.inf)
        k = min(int(top_k), eligible)
        best = np.argpartition(-scores, k - 1)[:k] if k < eligible else np.arange(eligible)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [LoopCandidate(self._ids[i], float(self._stamps[i]), float(scores[i]))
                for i in best if np.isfinite(scores[i]) and scores[i] >= min_similarity]

    def _stamps_sorted(self, n: int) -> bool:
        if n != getattr(self, "_sorted_n", -1):
            self._sorted = bool(np.all(np.diff(self._stamps[:n]) >= 0))
            self._sorted_n = n
        return self._sorted

    def _grow(self) -> None:
        self._capacity *= 2
        for name in ("_descriptors", "_stamps", "_poses"):
            old = getattr(self, name)
            new = np.zeros((self._capacity,) + old.shape[1:], old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)
