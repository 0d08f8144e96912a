"""Rig frame grouping through ROS 2 ``message_filters`` where it is importable, else the built-in policy.

``create_rig_synchronizer(...)`` returns an object with the interface of
``da3_ros.pipeline.rig_sync.RigSynchronizer`` (``add(camera_index, stamp_ns, payload) -> groups``,
``flush()``, ``reset()``, ``stats()``, ``callback`` / ``drop_callback``, ``implementation``):

- ``"message_filters"``: ``MessageFiltersRigSynchronizer`` feeds one ``message_filters.SimpleFilter``
  per camera into ``message_filters.ApproximateTimeSynchronizer(inputs, queue_size, slop)``;
- ``"builtin"``: ``RigSynchronizer`` (pipeline/rig_sync.py), also the fallback of ``"auto"``.

Differences of the message_filters path (its Python implementation, ros2/message_filters
``__init__.py``), kept as they are rather than patched over:

- a group is searched only around the item that just arrived (the newest item must be in it); the
  spread test is strict (``max - min < slop``, the built-in one is ``<=``); groups are not forced
  into time order per camera, so there is no ``late`` drop;
- items that never find partners are not dropped as ``no_partner``: they stay in its per-camera
  queue until they are evicted by ``queue_size`` (counted here as ``queue_overflow``) or by a newer
  item with the same stamp (``superseded``), or until ``flush()`` (``flushed``);
- the accounting reads the synchroniser's per-camera queues (``ApproximateTimeSynchronizer.queues``,
  dicts keyed by stamp in nanoseconds) after every item; an installation without that attribute is
  rejected at construction (``"auto"`` then falls back to the built-in policy).

``received == grouped + dropped + pending`` per camera holds for both.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..pipeline.rig_sync import (DROP_REASONS, DroppedItem, RigGroup, RigSynchronizer, RigSyncSettings,
                                 RigSyncStats)
from .optional_packages import importable

__all__ = ["IMPLEMENTATIONS", "MessageFiltersRigSynchronizer", "create_rig_synchronizer",
           "message_filters_available"]

IMPLEMENTATIONS = ("auto", "message_filters", "builtin")


def message_filters_available() -> Tuple[bool, str]:
    """``(True, "")`` when ``import message_filters`` works, else ``(False, reason)``."""
    return importable("message_filters")


class _Header:
    __slots__ = ("stamp",)

    def __init__(self, stamp):
        self.stamp = stamp


class _StampedItem:
    """What message_filters sees: an object with ``header.stamp`` (an ``rclpy.time.Time``)."""

    __slots__ = ("camera_index", "stamp_ns", "payload", "header")

    def __init__(self, camera_index: int, stamp_ns: int, payload: Any, stamp):
        self.camera_index = camera_index
        self.stamp_ns = stamp_ns
        self.payload = payload
        self.header = _Header(stamp)


class MessageFiltersRigSynchronizer(RigSyncSettings):
    """``message_filters.ApproximateTimeSynchronizer`` behind the ``RigSynchronizer`` interface."""

    implementation = "message_filters"

    def __init__(self, num_cameras: int, slop_s: float = 0.02, queue_size: int = 10,
                 callback: Optional[Callable[[RigGroup], None]] = None,
                 drop_callback: Optional[Callable[[DroppedItem], None]] = None):
        import message_filters
        from rclpy.time import Time

        super().__init__(num_cameras, slop_s, queue_size, callback, drop_callback)
        self._Time = Time
        self._inputs = [message_filters.SimpleFilter() for _ in range(self.num_cameras)]
        self._sync = message_filters.ApproximateTimeSynchronizer(self._inputs, self.queue_size, self.slop_ns * 1e-9)
        if not isinstance(getattr(self._sync, "queues", None), list):
            raise RuntimeError("this message_filters has no ApproximateTimeSynchronizer.queues; "
                               "use the built-in rig synchroniser")
        self._sync.registerCallback(self._on_group)
        self._lock = threading.Lock()
        self._shadow: List[Dict[int, _StampedItem]] = [{} for _ in range(self.num_cameras)]
        self._emitted: List[RigGroup] = []
        self._received = [0] * self.num_cameras
        self._grouped = [0] * self.num_cameras
        self._dropped = {r: [0] * self.num_cameras for r in DROP_REASONS}
        self._groups = 0

    def _on_group(self, *msgs: _StampedItem) -> None:  # called inside signalMessage, under our lock
        for m in msgs:
            self._grouped[m.camera_index] += 1
            self._shadow[m.camera_index].pop(id(m), None)
        self._groups += 1
        self._emitted.append(RigGroup(tuple(m.stamp_ns for m in msgs), tuple(m.payload for m in msgs)))

    def add(self, camera_index: int, stamp_ns: int, payload: Any = None) -> List[RigGroup]:
        if isinstance(camera_index, bool) or int(camera_index) != camera_index or \
                not 0 <= camera_index < self.num_cameras:
            raise ValueError(f"camera_index must be an integer in [0, {self.num_cameras}), got {camera_index!r}")
        if isinstance(stamp_ns, bool) or int(stamp_ns) != stamp_ns or stamp_ns < 0:
            raise ValueError(f"stamp_ns must be an integer >= 0 (nanoseconds), got {stamp_ns!r}")
        c, t = int(camera_index), int(stamp_ns)
        drops: List[DroppedItem] = []
        with self._lock:
            self._received[c] += 1
            msg = _StampedItem(c, t, payload, self._Time(nanoseconds=t))
            self._shadow[c][id(msg)] = msg
            self._emitted = []
            self._inputs[c].signalMessage(msg)
            groups, self._emitted = self._emitted, []
            queued = {id(m) for m in self._sync.queues[c].values()}
            for key, m in list(self._shadow[c].items()):
                if key not in queued:  # left the queue without being grouped
                    reason = "superseded" if m is not msg and m.stamp_ns == t else "queue_overflow"
                    self._dropped[reason][c] += 1
                    drops.append(DroppedItem(c, m.stamp_ns, m.payload, reason))
                    del self._shadow[c][key]
        self._notify(groups, drops)
        return groups

    def flush(self) -> List[DroppedItem]:
        drops: List[DroppedItem] = []
        with self._lock, self._sync.lock:
            for c in range(self.num_cameras):
                for m in self._shadow[c].values():
                    self._dropped["flushed"][c] += 1
                    drops.append(DroppedItem(c, m.stamp_ns, m.payload, "flushed"))
                self._shadow[c].clear()
                self._sync.queues[c].clear()
        self._notify([], drops)
        return drops

    def reset(self) -> List[DroppedItem]:
        return self.flush()

    def stats(self) -> RigSyncStats:
        with self._lock:
            return RigSyncStats(received=list(self._received), grouped=list(self._grouped),
                                pending=[len(s) for s in self._shadow],
                                dropped={r: list(v) for r, v in self._dropped.items()}, groups=self._groups)

    def _notify(self, groups, drops) -> None:
        if self.drop_callback is not None:
            for d in drops:
                self.drop_callback(d)
        if self.callback is not None:
            for g in groups:
                self.callback(g)


def create_rig_synchronizer(num_cameras: int, slop_s: float = 0.02, queue_size: int = 10,
                            callback: Optional[Callable[[RigGroup], None]] = None,
                            drop_callback: Optional[Callable[[DroppedItem], None]] = None,
                            implementation: str = "auto"):
    """The rig synchroniser: message_filters' when importable (``"auto"``), else the built-in one.

    ``implementation="message_filters"`` raises ``RuntimeError`` when it is not available.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    kwargs = dict(num_cameras=num_cameras, slop_s=slop_s, queue_size=queue_size, callback=callback,
                  drop_callback=drop_callback)
    if implementation in ("auto", "message_filters"):
        ok, why = message_filters_available()
        if ok:
            try:
                return MessageFiltersRigSynchronizer(**kwargs)
            except RuntimeError:
                if implementation == "message_filters":
                    raise
        elif implementation == "message_filters":
            raise RuntimeError(why)
    return RigSynchronizer(**kwargs)
