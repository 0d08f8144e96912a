"""Approximate-time grouping of a camera rig's frames (ROS-free, thread-safe, exact accounting).

Works on items ``(camera_index, stamp_ns, payload)``; emits ``RigGroup`` s with exactly one item per
camera whose stamps all lie within ``slop_s`` of each other (``max - min <= slop``).

Policy (eager, like ROS 2 message_filters' Python ``ApproximateTimeSynchronizer``: a group is emitted
as soon as it is complete, nothing waits for a better partner):

- One pending queue per camera, kept sorted by stamp (arrival order within a camera does not matter
  while an item is pending), bounded by ``queue_size``.
- After every ``add`` the synchroniser emits complete groups until none is left. Candidate groups are
  built per anchor item ``a`` (the group's earliest stamp): every other camera contributes its earliest
  pending item in ``[a, a + slop]``. Among the candidates whose anchor lies within ``slop`` of the
  earliest candidate's anchor, the one with the smallest spread (max - min stamp) wins; ties go to the
  earlier anchor. So when two frames of one camera could join a group, the closer one does.
- Groups come out in time order per camera: emitting a group removes every pending item older than the
  group's item of the same camera.

Every item ends in exactly one place: an emitted group, or a drop with one reason (``DROP_REASONS``):

- ``superseded``: it would have fitted the emitted group but a closer frame of its camera was taken,
  or a newer item of its camera with the identical stamp replaced it (message_filters keys its queues
  by stamp and overwrites the same way);
- ``no_partner``: a group at a later stamp was emitted for its camera and it did not fit that group;
  no group within slop can contain it any more (e.g. every unmatched frame of a full-rate camera when
  another camera runs at half rate);
- ``queue_overflow``: its camera queue exceeded ``queue_size``; the oldest pending item goes;
- ``late``: it arrived with a stamp at or before the last emitted group's stamp of its camera
  (reordered beyond what an eager policy can use);
- ``flushed``: still pending when ``flush()`` was called.

Hence per camera at every moment ``received == grouped + dropped + pending`` and after ``flush()``
``received == grouped + dropped`` (``RigSyncStats.balanced``). Callbacks run outside the lock, in the
thread that called ``add`` / ``flush``.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["DROP_REASONS", "RigGroup", "RigSyncStats", "DroppedItem", "RigSyncSettings", "RigSynchronizer",
           "slop_to_ns"]

DROP_REASONS = ("superseded", "no_partner", "queue_overflow", "late", "flushed")


def slop_to_ns(slop_s: float) -> int:
    """Slop in seconds -> integer nanoseconds (rounded); must be finite and >= 0."""
    slop = float(slop_s)
    if not (slop >= 0.0 and slop < float("inf")):
        raise ValueError(f"sync_slop_s must be a finite number >= 0, got {slop_s!r}")
    return int(round(slop * 1e9))


class RigSyncSettings:
    """What every rig synchroniser is configured with (built-in and message_filters alike), checked."""

    def __init__(self, num_cameras: int, slop_s: float, queue_size: int,
                 callback: Optional[Callable[["RigGroup"], None]],
                 drop_callback: Optional[Callable[["DroppedItem"], None]]):
        if int(num_cameras) != num_cameras or num_cameras < 1:
            raise ValueError(f"num_cameras must be an integer >= 1, got {num_cameras!r}")
        if int(queue_size) != queue_size or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        self.num_cameras = int(num_cameras)
        self.queue_size = int(queue_size)
        self.slop_ns = slop_to_ns(slop_s)
        self.callback = callback
        self.drop_callback = drop_callback


@dataclass(frozen=True)
class RigGroup:
    """One complete group: ``stamps_ns[c]`` and ``payloads[c]`` of camera ``c`` (index order)."""

    stamps_ns: Tuple[int, ...]
    payloads: Tuple[Any, ...]

    @property
    def spread_ns(self) -> int:
        """max - min stamp of the group (<= slop)."""
        return max(self.stamps_ns) - min(self.stamps_ns)

    @property
    def stamp_ns(self) -> int:
        """The group's stamp: the newest of its cameras' stamps."""
        return max(self.stamps_ns)


@dataclass(frozen=True)
class DroppedItem:
    camera_index: int
    stamp_ns: int
    payload: Any
    reason: str


@dataclass
class RigSyncStats:
    """Per-camera counters (lists indexed by camera); ``dropped[reason][c]``."""

    received: List[int]
    grouped: List[int]
    pending: List[int]
    dropped: Dict[str, List[int]] = field(default_factory=dict)
    groups: int = 0

    def dropped_total(self, camera_index: int) -> int:
        return sum(v[camera_index] for v in self.dropped.values())

    @property
    def balanced(self) -> bool:
        """``received == grouped + dropped + pending`` for every camera."""
        return all(self.received[c] == self.grouped[c] + self.dropped_total(c) + self.pending[c]
                   for c in range(len(self.received)))


class _Item:
    __slots__ = ("stamp", "seq", "payload")

    def __init__(self, stamp: int, seq: int, payload: Any):
        self.stamp = stamp
        self.seq = seq
        self.payload = payload


class RigSynchronizer(RigSyncSettings):
    """Approximate-time synchroniser for ``num_cameras`` cameras (see the module doc for the policy).

    Args:
        num_cameras: C >= 1 (C == 1 passes every item through as a one-camera group).
        slop_s: maximum spread of a group's stamps, seconds (``sync_slop_s``; inclusive).
        queue_size: pending items kept per camera (>= 1).
        callback: ``callback(group: RigGroup)`` for every emitted group (optional).
        drop_callback: ``drop_callback(item: DroppedItem)`` for every drop (optional).
    """

    implementation = "builtin"

    def __init__(self, num_cameras: int, slop_s: float = 0.02, queue_size: int = 10,
                 callback: Optional[Callable[[RigGroup], None]] = None,
                 drop_callback: Optional[Callable[[DroppedItem], None]] = None):
        super().__init__(num_cameras, slop_s, queue_size, callback, drop_callback)
        self._lock = threading.Lock()
        self._stamps: List[List[int]] = [[] for _ in range(self.num_cameras)]  # sorted, parallel to _items
        self._items: List[List[_Item]] = [[] for _ in range(self.num_cameras)]
        self._last_grouped: List[Optional[int]] = [None] * self.num_cameras
        self._seq = 0
        self._received = [0] * self.num_cameras
        self._grouped = [0] * self.num_cameras
        self._dropped = {r: [0] * self.num_cameras for r in DROP_REASONS}
        self._groups = 0

    # ------------------------------------------------------------------ public
    def add(self, camera_index: int, stamp_ns: int, payload: Any = None) -> List[RigGroup]:
        """Offer one item; returns the groups it completed (also passed to ``callback``).

        Raises ``ValueError`` (and counts nothing) for a camera index out of range or a stamp that is
        not a non-negative integer.
        """
        if isinstance(camera_index, bool) or int(camera_index) != camera_index or \
                not 0 <= camera_index < self.num_cameras:
            raise ValueError(f"camera_index must be an integer in [0, {self.num_cameras}), got {camera_index!r}")
        if isinstance(stamp_ns, bool) or int(stamp_ns) != stamp_ns or stamp_ns < 0:
            raise ValueError(f"stamp_ns must be an integer >= 0 (nanoseconds), got {stamp_ns!r}")
        c, t = int(camera_index), int(stamp_ns)
        drops: List[DroppedItem] = []
        with self._lock:
            self._received[c] += 1
            self._seq += 1
            item = _Item(t, self._seq, payload)
            last = self._last_grouped[c]
            if last is not None and t <= last:
                self._drop(c, item, "late", drops)
                groups: List[RigGroup] = []
            else:
                self._insert(c, item, drops)
                groups = self._emit_all(drops)
        self._notify(groups, drops)
        return groups

    def flush(self) -> List[DroppedItem]:
        """Drop every pending item (reason ``flushed``); afterwards received == grouped + dropped."""
        drops: List[DroppedItem] = []
        with self._lock:
            for c in range(self.num_cameras):
                for item in self._items[c]:
                    self._drop(c, item, "flushed", drops)
                self._items[c] = []
                self._stamps[c] = []
        self._notify([], drops)
        return drops

    def reset(self) -> List[DroppedItem]:
        """``flush()`` and forget the last grouped stamps (for a restarted stream); counters are kept."""
        drops = self.flush()
        with self._lock:
            self._last_grouped = [None] * self.num_cameras
        return drops

    def stats(self) -> RigSyncStats:
        with self._lock:
            return RigSyncStats(received=list(self._received), grouped=list(self._grouped),
                                pending=[len(q) for q in self._items],
                                dropped={r: list(v) for r, v in self._dropped.items()}, groups=self._groups)

    # ----------------------------------------------------------------- private
    def _drop(self, c: int, item: _Item, reason: str, drops: List[DroppedItem]) -> None:
        self._dropped[reason][c] += 1
        drops.append(DroppedItem(c, item.stamp, item.payload, reason))

    def _insert(self, c: int, item: _Item, drops: List[DroppedItem]) -> None:
        stamps, items = self._stamps[c], self._items[c]
        i = bisect.bisect_left(stamps, item.stamp)
        if i < len(stamps) and stamps[i] == item.stamp:  # identical stamp: the newer item replaces it
            self._drop(c, items[i], "superseded", drops)
            items[i] = item
        else:
            stamps.insert(i, item.stamp)
            items.insert(i, item)
        while len(items) > self.queue_size:
            self._drop(c, items.pop(0), "queue_overflow", drops)
            stamps.pop(0)

    def _candidate(self, anchor_cam: int, anchor: int) -> Optional[Tuple[int, List[int]]]:
        """(spread, index per camera) of the group anchored at stamp ``anchor`` of ``anchor_cam``."""
        idx = []
        hi = anchor
        for k in range(self.num_cameras):
            stamps = self._stamps[k]
            j = bisect.bisect_left(stamps, anchor)  # the anchor itself on ``anchor_cam``
            if k != anchor_cam and (j == len(stamps) or stamps[j] - anchor > self.slop_ns):
                return None
            idx.append(j)
            hi = max(hi, stamps[j])
        return hi - anchor, idx

    def _best_group(self) -> Optional[List[int]]:
        if any(not s for s in self._stamps):
            return None
        anchors = sorted((s, k) for k in range(self.num_cameras) for s in self._stamps[k])
        best = None  # (spread, anchor, index list)
        first_anchor = None
        for a, k in anchors:
            if first_anchor is not None and a - first_anchor > self.slop_ns:
                break
            cand = self._candidate(k, a)
            if cand is None:
                continue
            if first_anchor is None:
                first_anchor = a
            if best is None or cand[0] < best[0]:
                best = (cand[0], a, cand[1])
        return None if best is None else best[2]

    def _emit_all(self, drops: List[DroppedItem]) -> List[RigGroup]:
        groups = []
        while True:
            idx = self._best_group()
            if idx is None:
                return groups
            chosen = [self._items[k][idx[k]] for k in range(self.num_cameras)]
            for k in range(self.num_cameras):
                for item in self._items[k][:idx[k]]:
                    # would this older frame have fitted the group in place of camera k's chosen one?
                    others = [chosen[m].stamp for m in range(self.num_cameras) if m != k]
                    fits = bool(others) and max(others + [item.stamp]) - min(others + [item.stamp]) <= self.slop_ns
                    self._drop(k, item, "superseded" if fits else "no_partner", drops)
                self._grouped[k] += 1
                self._last_grouped[k] = chosen[k].stamp
                del self._items[k][:idx[k] + 1]
                del self._stamps[k][:idx[k] + 1]
            self._groups += 1
            groups.append(RigGroup(tuple(it.stamp for it in chosen), tuple(it.payload for it in chosen)))

    def _notify(self, groups: Sequence[RigGroup], drops: Sequence[DroppedItem]) -> None:
        if self.drop_callback is not None:
            for d in drops:
                self.drop_callback(d)
        if self.callback is not None:
            for g in groups:
                self.callback(g)
