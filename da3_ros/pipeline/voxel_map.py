"""A bounded, voxel-downsampled map of keyframe points in the odometry frame (ROS-free).

Each keyframe contributes its valid points (odometry frame), one point per voxel (the first point of
the voxel in the keyframe's point order). The fused map keeps one point per voxel over all keyframes
(the newest keyframe wins) and drops the oldest keyframes' voxels when it would exceed ``max_points``
(a single keyframe larger than ``max_points`` keeps its first ``max_points`` voxels). This is exactly
what fusing the kept keyframes from scratch gives (test_voxel_map checks it against that rebuild).

Incremental: adding a keyframe costs O(its points) plus one memmove of the sorted voxel-key index
(12 bytes per map voxel), never a rebuild of the map:

* voxel keys are the floored voxel coordinates packed into one int64 (21 bits per axis, so
  +-2^20 voxels = +-52 km at 5 cm; points beyond that are dropped like invalid ones);
* ``_keys`` (sorted) -> ``_key_ids`` maps a voxel key to a stable voxel id (``np.searchsorted``);
  evicted keys stay as tombstones (id -1), reused when the voxel comes back, purged when they
  outnumber the live voxels, so a keyframe costs one ``np.insert`` and no ``np.delete``;
* the voxels' points and colours live in preallocated dense buffers, rows ``[0, len)``; a voxel id
  names its row (``_row_of_id``), evicted rows are refilled from the tail (swap-remove), so
  ``points()`` is two views of the buffers and copies nothing;
* ``_owner_of_id`` is the sequence number of the keyframe that last wrote the voxel; the log
  (``_log_ids`` / ``_log_seq``, oldest keyframe first) lists the voxel ids each keyframe wrote, so
  evicting the oldest keyframe reads its log entries only (O(evicted keyframe)); entries of voxels
  that a newer keyframe overwrote are dead (owner differs) and are dropped when the log exceeds
  ``2 * max_points`` (amortised O(1) per entry), so memory stays bounded however long the node
  runs, also when the camera keeps revisiting the same place.

Pose corrections: keyframe points are fused with the pose the keyframe had when it was added; a
later corrected pose is not applied (the previous implementation did not either: its stored
keyframe clouds were already in the odometry frame). The map is cleared on a trajectory reset.
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple

import cv2
import numpy as np

_AXIS_BITS = 21
_AXIS_OFFSET = 1 << (_AXIS_BITS - 1)   # voxel coordinates in [-2^20, 2^20) are representable
_INVALID_KEY = -1                       # packed keys of valid points are >= 0
_FIRST_CAPACITY = 1 << 18               # voxels allocated at the first keyframe (~12 MB with the log)


def voxel_keys(points: np.ndarray, voxel: float) -> np.ndarray:
    """(N, 3) float points -> (N,) int64 packed voxel keys of ``floor(p / voxel)``.

    Non-finite points and points beyond +-2^20 voxels from the origin get ``-1``.
    """
    q = np.divide(np.asarray(points, np.float32).reshape(-1, 3), np.float32(voxel), dtype=np.float32)
    np.floor(q, out=q)
    limit = np.float32(_AXIS_OFFSET)
    ok = (np.abs(q[:, 0]) < limit) & (np.abs(q[:, 1]) < limit) & (np.abs(q[:, 2]) < limit)   # NaN -> False
    q[~ok] = 0.0
    keys = (q[:, 0].astype(np.int64) + _AXIS_OFFSET) << (2 * _AXIS_BITS)
    keys |= (q[:, 1].astype(np.int64) + _AXIS_OFFSET) << _AXIS_BITS
    keys |= q[:, 2].astype(np.int64) + _AXIS_OFFSET
    keys[~ok] = _INVALID_KEY
    return keys


def first_per_voxel(keys: np.ndarray, grid_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """-> (sorted unique valid keys, index of the first point with each key).

    ``grid_shape`` (h, w): the keys are an organized cloud in row-major order; points equal to their
    left or upper neighbour are dropped before the sort (never the first point of a voxel, which has
    no earlier point with its key), which shrinks dense clouds several times.
    """
    keys = np.asarray(keys, np.int64).reshape(-1)
    if grid_shape is not None:
        grid = keys.reshape(grid_shape)
        keep = grid >= 0
        keep[:, 1:] &= grid[:, 1:] != grid[:, :-1]
        keep[1:, :] &= grid[1:, :] != grid[:-1, :]
        keep = keep.reshape(-1)
    else:
        keep = keys >= 0
        keep[1:] &= keys[1:] != keys[:-1]
    index = np.flatnonzero(keep)
    if index.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = keys[index]
    order = np.argsort(k)                 # quicksort: ties in any order, the min below picks the first
    k_sorted = k[order]
    head = np.empty(k_sorted.size, bool)
    head[0] = True
    np.not_equal(k_sorted[1:], k_sorted[:-1], out=head[1:])
    starts = np.flatnonzero(head)
    return k_sorted[starts], index[np.minimum.reduceat(order, starts)]


def voxel_downsample(points: np.ndarray, colours: np.ndarray | None, voxel: float):
    """Keep the first point of every voxel (in input order). points (M, 3) finite float32."""
    if points.shape[0] == 0:
        return points, colours
    _, first = first_per_voxel(voxel_keys(points, voxel))
    first.sort()
    return points[first], (colours[first] if colours is not None else None)


def rigid_transform_float32(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply the 4x4 (or 3x4) transform T to float32 points (..., 3) in float32 (NaN stays NaN)."""
    pts = np.ascontiguousarray(points, np.float32)
    M = np.asarray(T, np.float32)[:3, :4]
    return cv2.transform(pts.reshape(-1, 1, 3), M).reshape(pts.shape)


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, k) C-contiguous array -> (N,) view with one opaque element per row (fast fancy indexing)."""
    return a.view(np.dtype((np.void, a.shape[1] * a.itemsize))).reshape(-1)


def _sorted_insert(keys: np.ndarray, values: np.ndarray, positions: np.ndarray, new_keys: np.ndarray,
                   new_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.insert`` of new_keys/new_values at ``positions`` (sorted, from searchsorted) into both arrays."""
    if positions.size == 0:
        return keys, values
    at = positions + np.arange(positions.size)
    old = np.ones(keys.size + positions.size, bool)
    old[at] = False
    out_keys, out_values = np.empty(old.size, keys.dtype), np.empty(old.size, values.dtype)
    out_keys[at], out_values[at] = new_keys, new_values
    out_keys[old], out_values[old] = keys, values
    return out_keys, out_values


class _Keyframe(NamedTuple):
    seq: int          # insertion sequence number (owner tag of the voxels it wrote)
    key: object       # the caller's key
    coloured: bool


class VoxelMap:
    def __init__(self, voxel_size: float = 0.05, max_points: int = 200_000):
        if voxel_size <= 0:
            raise ValueError(f"map voxel size must be > 0, got {voxel_size}")
        if max_points < 1:
            raise ValueError(f"map max points must be >= 1, got {max_points}")
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self.clear()

    def __len__(self) -> int:
        return self._live

    @property
    def keyframe_count(self) -> int:
        """Keyframes kept (<= 2 * max_points: each wrote >= 1 voxel; ones left with none are dropped)."""
        return len(self._keyframes)

    @property
    def stored_entries(self) -> int:
        """Log entries held (voxel ids per keyframe); <= 2 * max_points after every add."""
        return self._log_end - self._log_start

    def clear(self) -> None:
        self._live = 0
        self._capacity = 0
        self._keys = np.zeros(0, np.int64)        # sorted keys of the live voxels
        self._key_ids = np.zeros(0, np.int64)     # voxel id of each key in _keys, -1: tombstone
        self._tombstones = 0
        self._xyz = np.zeros((0, 3), np.float32)  # dense rows [0, _live)
        self._rgb = np.zeros((0, 3), np.uint8)
        self._id_of_row = np.zeros(0, np.int64)
        self._row_of_id = np.zeros(0, np.int64)
        self._owner_of_id = np.zeros(0, np.int64)  # keyframe seq, -1 when the id is free
        self._key_of_id = np.zeros(0, np.int64)
        self._free_ids = np.zeros(0, np.int64)    # stack, [0, _n_free)
        self._n_free = 0
        self._log_ids = np.zeros(0, np.int64)
        self._log_seq = np.zeros(0, np.int64)
        self._log_start = self._log_end = 0
        self._keyframes: deque[_Keyframe] = deque()
        self._uncoloured = 0                      # kept keyframes without colours
        self._next_seq = 0

    # ------------------------------------------------------------------------------------------
    def add_keyframe(self, key, points: np.ndarray, colours: np.ndarray | None,
                     T_odom_points: np.ndarray | None = None) -> None:
        """Fuse one keyframe.

        points: (..., 3) with NaN for invalid points, in the odometry frame, or in the frame that
        ``T_odom_points`` (4x4) maps to the odometry frame; an (h, w, 3) organized cloud is
        deduplicated faster. colours: (..., 3) uint8 matching ``points``, or None.
        """
        pts = np.asarray(points)
        if pts.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {pts.shape}")
        if colours is not None and np.shape(colours) != pts.shape:
            raise ValueError(f"colours must have the points' shape {pts.shape}, got {np.shape(colours)}")
        if T_odom_points is not None:
            pts = rigid_transform_float32(T_odom_points, pts)
        else:
            pts = pts.astype(np.float32, copy=False)
        flat = pts.reshape(-1, 3)
        ukeys, first = first_per_voxel(voxel_keys(flat, self.voxel_size), pts.shape[:2] if pts.ndim == 3 else None)
        if ukeys.size == 0:   # no valid point: nothing to fuse, nothing to remember
            return
        seq = self._next_seq
        self._next_seq += 1
        self._keyframes.append(_Keyframe(seq, key, colours is not None))
        self._uncoloured += colours is None
        # np.take and 1-D void views move (N, 3) rows several times faster than 2-D fancy indexing
        xyz = np.take(flat, first, axis=0)
        rgb = np.take(np.asarray(colours, np.uint8).reshape(-1, 3), first, axis=0) if colours is not None else None

        # voxels already in the map: this keyframe's point replaces the old one (newest wins)
        pos = np.searchsorted(self._keys, ukeys)                  # insertion points (index unchanged below)
        if self._keys.size:
            at = np.minimum(pos, self._keys.size - 1)
            listed = self._keys[at] == ukeys                      # live or tombstone entry for the key
            ids = np.where(listed, self._key_ids[at], -1)
        else:
            listed, ids = np.zeros(ukeys.size, bool), np.full(ukeys.size, -1, np.int64)
        present = ids >= 0
        self._owner_of_id[ids[present]] = seq                     # never evicted below

        # new voxels: make room by evicting the oldest keyframes (tombstones in the index)
        if self._evict_oldest(self._live + ukeys.size - int(np.count_nonzero(present)) - self.max_points) > 0:
            # the newest keyframe alone is too large: keep its first max_points voxels (point order)
            kept = np.zeros(ukeys.size, bool)
            kept[np.argsort(first, kind="stable")[: self.max_points]] = True
            self._remove(ids[present & ~kept])
            sel = np.flatnonzero(kept)
            ukeys, pos, listed, ids, present = ukeys[sel], pos[sel], listed[sel], ids[sel], present[sel]
            xyz, rgb = np.take(xyz, sel, axis=0), (np.take(rgb, sel, axis=0) if rgb is not None else None)
        new = np.flatnonzero(~present)
        n_new = new.size
        self._reserve(self._live + n_new)
        new_ids = self._free_ids[self._n_free - n_new:self._n_free].copy()
        self._n_free -= n_new
        new_rows = np.arange(self._live, self._live + n_new)
        self._row_of_id[new_ids] = new_rows
        self._id_of_row[new_rows] = new_ids
        self._owner_of_id[new_ids] = seq
        self._key_of_id[new_ids] = ukeys[new]
        self._live += n_new
        ids[new] = new_ids
        rows = self._row_of_id[ids]                               # after eviction moved rows
        _rows(self._xyz)[rows] = _rows(xyz)
        if rgb is not None:
            _rows(self._rgb)[rows] = _rows(rgb)
        else:
            self._rgb[rows] = 0
        # index: reuse a tombstone of the same key, insert the other new keys
        reuse = new[listed[new]]
        self._key_ids[np.minimum(pos[reuse], self._keys.size - 1)] = ids[reuse]
        self._tombstones -= reuse.size
        insert = new[~listed[new]]
        self._keys, self._key_ids = _sorted_insert(self._keys, self._key_ids, pos[insert], ukeys[insert], ids[insert])
        if self._tombstones > max(self._live, 1024):
            alive = self._key_ids >= 0
            self._keys, self._key_ids, self._tombstones = self._keys[alive], self._key_ids[alive], 0
        self._log_append(ids, seq)

    def points(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused (M, 3) float32 points and (M, 3) uint8 colours (None if a kept keyframe had none).

        M <= max_points. Read-only views of the map's buffers (no copy): valid until the next
        ``add_keyframe``/``clear``; copy them to keep them longer.
        """
        xyz = self._xyz[: self._live]
        xyz.flags.writeable = False
        if self._uncoloured:
            return xyz, None
        rgb = self._rgb[: self._live]
        rgb.flags.writeable = False
        return xyz, rgb

    # ------------------------------------------------------------------------------------------
    def _evict_oldest(self, need: int) -> int:
        """Free at least ``need`` voxels from the oldest keyframes (never the newest); -> shortfall.

        Index positions stay valid: evicted keys become tombstones, not deletions."""
        if need <= 0:
            return 0
        evicted = []
        start = self._log_start
        while need > 0 and len(self._keyframes) > 1:
            kf = self._keyframes.popleft()
            self._uncoloured -= not kf.coloured
            end = start + int(np.searchsorted(self._log_seq[start:self._log_end], kf.seq, side="right"))
            ids = self._log_ids[start:end]
            ids = ids[self._owner_of_id[ids] == kf.seq]
            evicted.append(ids)
            need -= ids.size
            start = end
        self._log_start = start
        if evicted:
            self._remove(np.concatenate(evicted))
        return max(need, 0)

    def _remove(self, ids: np.ndarray) -> None:
        """Drop voxels by id: refill their rows from the tail rows, tombstone their keys."""
        if ids.size == 0:
            return
        live = self._live - ids.size
        rows = self._row_of_id[ids]
        removed_tail = np.zeros(ids.size, bool)
        removed_tail[rows[rows >= live] - live] = True
        movers = live + np.flatnonzero(~removed_tail)     # tail rows that stay
        holes = rows[rows < live]                         # as many rows below the new end
        for buffer in (_rows(self._xyz), _rows(self._rgb)):
            buffer[holes] = buffer[movers]
        moved_ids = self._id_of_row[movers]
        self._id_of_row[holes] = moved_ids
        self._row_of_id[moved_ids] = holes
        gone = np.sort(self._key_of_id[ids])                    # sorted queries search faster
        self._key_ids[np.searchsorted(self._keys, gone)] = -1   # tombstones, purged later
        self._tombstones += ids.size
        self._owner_of_id[ids] = -1
        self._free_ids[self._n_free:self._n_free + ids.size] = ids
        self._n_free += ids.size
        self._live = live

    def _reserve(self, size: int) -> None:
        """Grow the per-voxel buffers (doubling, capped at max_points) to hold ``size`` voxels."""
        if size <= self._capacity:
            return
        old = self._capacity
        # one allocation for the default map size (no reallocation spikes), doubling above it
        cap = min(self.max_points, max(size, 2 * old, _FIRST_CAPACITY))

        def grow(a: np.ndarray) -> np.ndarray:
            # np.empty: pages are touched as voxels arrive, not all at the first keyframe; rows and
            # ids beyond the ones handed out are never read (ids in the log were handed out)
            out = np.empty((cap,) + a.shape[1:], a.dtype)
            out[:old] = a
            return out

        self._xyz, self._rgb = grow(self._xyz), grow(self._rgb)
        self._id_of_row, self._row_of_id = grow(self._id_of_row), grow(self._row_of_id)
        self._owner_of_id, self._key_of_id = grow(self._owner_of_id), grow(self._key_of_id)
        free = grow(self._free_ids)
        free[self._n_free:self._n_free + cap - old] = np.arange(cap - 1, old - 1, -1)
        self._free_ids, self._n_free, self._capacity = free, self._n_free + cap - old, cap

    def _log_append(self, ids: np.ndarray, seq: int) -> None:
        if self._log_end - self._log_start + ids.size > 2 * self.max_points:
            self._compact_log()
        n = self._log_end - self._log_start
        if self._log_end + ids.size > self._log_ids.size:   # shift to the front, grow if needed
            cap = max(min(2 * _FIRST_CAPACITY, 4 * self.max_points), 2 * (n + ids.size))
            log_ids, log_seq = np.empty(cap, np.int64), np.empty(cap, np.int64)
            log_ids[:n] = self._log_ids[self._log_start:self._log_end]
            log_seq[:n] = self._log_seq[self._log_start:self._log_end]
            self._log_ids, self._log_seq, self._log_start, self._log_end = log_ids, log_seq, 0, n
        self._log_ids[self._log_end:self._log_end + ids.size] = ids
        self._log_seq[self._log_end:self._log_end + ids.size] = seq
        self._log_end += ids.size

    def _compact_log(self) -> None:
        """Drop log entries of overwritten voxels, and keyframes left without voxels (newest kept)."""
        ids = self._log_ids[self._log_start:self._log_end]
        seqs = self._log_seq[self._log_start:self._log_end]
        alive = self._owner_of_id[ids] == seqs
        n = int(np.count_nonzero(alive))
        self._log_ids[:n], self._log_seq[:n] = ids[alive], seqs[alive]
        self._log_start, self._log_end = 0, n
        owning = set(np.unique(self._log_seq[:n]).tolist())
        newest = self._keyframes[-1].seq
        self._keyframes = deque(kf for kf in self._keyframes if kf.seq in owning or kf.seq == newest)
        self._uncoloured = sum(not kf.coloured for kf in self._keyframes)
