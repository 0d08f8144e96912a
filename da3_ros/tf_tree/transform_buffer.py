"""A time-indexed tree of frames (the tf2 BufferCore semantics), ROS-free.

Each frame has at most one parent. An edge ``parent -> child`` holds ``T_parent_child`` (4x4 SE(3),
maps child coordinates into the parent frame), either **static** (one value, valid at all times) or
**dynamic** (samples stamped in integer nanoseconds, kept for ``cache_time_s`` behind the newest
sample of that edge and interpolated in between: linear translation, quaternion slerp).

``lookup(target_frame, source_frame, stamp_ns)`` returns ``T_target_source`` (maps data in
``source_frame`` into ``target_frame``, as ``tf2 lookupTransform(target, source, time)``), walking
from both frames up to their common ancestor. ``stamp_ns == 0`` means the latest common time: the
oldest of the newest samples of the dynamic edges on the path (0 when the path is all static).

Errors subclass :class:`TransformLookupError` (itself a builtin ``LookupError``) and name the frames
and times in seconds: :class:`UnknownFrameError`, :class:`ConnectivityError`,
:class:`ExtrapolationError` (requested time and the available interval of every dynamic edge on the
path).

Thread safety: every method takes one lock; ``lookup``/``can_transform`` with ``timeout_s > 0`` wait
on a condition variable that ``set_transform`` notifies. A caller must never wait from the thread
that delivers the transforms (e.g. a single-threaded ROS executor callback): the node calls lookups
with a timeout from its worker thread.
"""
from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..geometry.transforms import (check_rigid_transform, invert_transform, quaternion_xyzw_to_rotation,
                                   rotation_to_quaternion_xyzw, slerp_quaternion_xyzw)

__all__ = [
    "ConnectivityError", "EdgeInterval", "ExtrapolationError", "ReparentEvent", "TransformBuffer",
    "TransformLookupError", "UnknownFrameError", "format_stamp",
]

_NS_PER_S = 1_000_000_000
_MAX_TREE_DEPTH = 1000  # as tf2: a longer walk means a loop in the tree


def format_stamp(stamp_ns: int) -> str:
    """Integer nanoseconds -> ``'<seconds>.<9 digits> s'`` (exact, no float rounding)."""
    stamp_ns = int(stamp_ns)
    sign = "-" if stamp_ns < 0 else ""
    sec, nsec = divmod(abs(stamp_ns), _NS_PER_S)
    return f"{sign}{sec}.{nsec:09d} s"


class TransformLookupError(LookupError):
    """A transform between two frames cannot be computed (base of all buffer lookup errors)."""

    def __init__(self, message: str, target_frame: str = "", source_frame: str = "", stamp_ns: int = 0):
        super().__init__(message)
        self.target_frame = target_frame
        self.source_frame = source_frame
        self.stamp_ns = int(stamp_ns)


class UnknownFrameError(TransformLookupError):
    """A frame has never appeared in any transform (tf2 ``LookupException``)."""

    def __init__(self, message: str, frame: str, target_frame: str = "", source_frame: str = "", stamp_ns: int = 0):
        super().__init__(message, target_frame, source_frame, stamp_ns)
        self.frame = frame


class ConnectivityError(TransformLookupError):
    """Both frames are known but lie in different trees, or the tree has a loop (tf2 ``ConnectivityException``)."""


@dataclass(frozen=True)
class EdgeInterval:
    """Data available on one dynamic edge of a lookup path, in nanoseconds (inclusive)."""

    parent: str
    child: str
    earliest_ns: int
    latest_ns: int

    def describe(self) -> str:
        return f"{self.parent} -> {self.child} [{format_stamp(self.earliest_ns)} .. {format_stamp(self.latest_ns)}]"


class ExtrapolationError(TransformLookupError):
    """The requested time lies outside the cached data of a dynamic edge (tf2 ``ExtrapolationException``).

    ``edges`` lists every dynamic edge of the path with its available interval; ``failing`` the ones
    that do not cover ``stamp_ns``.
    """

    def __init__(self, message: str, target_frame: str, source_frame: str, stamp_ns: int,
                 edges: Sequence[EdgeInterval] = (), failing: Sequence[EdgeInterval] = ()):
        super().__init__(message, target_frame, source_frame, stamp_ns)
        self.edges = tuple(edges)
        self.failing = tuple(failing)


@dataclass(frozen=True)
class ReparentEvent:
    """A child frame received a transform from a different parent (or switched static <-> dynamic)."""

    child: str
    old_parent: str
    new_parent: str
    old_static: bool
    new_static: bool
    authority: str

    def describe(self) -> str:
        kind = lambda s: "static" if s else "dynamic"  # noqa: E731
        by = f" (from '{self.authority}')" if self.authority else ""
        return (f"frame '{self.child}' re-parented: {kind(self.old_static)} parent '{self.old_parent}' replaced by "
                f"{kind(self.new_static)} parent '{self.new_parent}'{by}; its earlier samples were dropped")


@dataclass
class _Edge:
    parent: str
    static: bool
    authority: str
    stamps: List[int] = field(default_factory=list)  # sorted ascending (one entry, ignored, when static)
    matrices: List[np.ndarray] = field(default_factory=list)
    translations: List[np.ndarray] = field(default_factory=list)
    quaternions: List[np.ndarray] = field(default_factory=list)

    def interval(self, child: str) -> EdgeInterval:
        return EdgeInterval(self.parent, child, self.stamps[0], self.stamps[-1])

    def covers(self, stamp_ns: int) -> bool:
        return self.static or self.stamps[0] <= stamp_ns <= self.stamps[-1]

    def at(self, stamp_ns: int) -> np.ndarray:
        """``T_parent_child`` at ``stamp_ns`` (caller checked ``covers``)."""
        if self.static:
            return self.matrices[0]
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if self.stamps[i] == stamp_ns:
            return self.matrices[i]
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        alpha = (stamp_ns - t0) / (t1 - t0)
        T = np.eye(4)
        T[:3, :3] = quaternion_xyzw_to_rotation(
            slerp_quaternion_xyzw(self.quaternions[i - 1], self.quaternions[i], alpha))
        T[:3, 3] = self.translations[i - 1] + alpha * (self.translations[i] - self.translations[i - 1])
        return T


def _check_frame(name: str, what: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__}")
    name = name.lstrip("/")  # tf2 strips a leading slash ("/base_link" == "base_link")
    if not name:
        raise ValueError(f"{what} is empty")
    return name


def _check_se3(T: np.ndarray, parent: str, child: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"transform {parent} -> {child} must be 4x4, got shape {T.shape}")
    return check_rigid_transform(T, f"transform {parent} -> {child}")


class TransformBuffer:
    """Frames tree with static and time-interpolated dynamic edges (see the module docstring).

    ``cache_time_s``: how long dynamic samples are kept behind the newest sample of their edge (tf2's
    default is 10 s); samples older than that are pruned and late ones older than that are ignored.
    """

    def __init__(self, cache_time_s: float = 10.0):
        if not np.isfinite(cache_time_s) or cache_time_s <= 0:
            raise ValueError(f"cache_time_s must be a positive number of seconds, got {cache_time_s}")
        self.cache_time_ns = int(round(cache_time_s * _NS_PER_S))
        self._edges: dict[str, _Edge] = {}  # child frame -> edge to its parent
        self._frames: set[str] = set()
        self._reparent_events: List[ReparentEvent] = []
        self._cond = threading.Condition(threading.Lock())

    # ------------------------------------------------------------------ inserting
    def set_transform(self, parent_frame: str, child_frame: str, stamp_ns: int, T_parent_child: np.ndarray,
                      static: bool = False, authority: str = "") -> bool:
        """Insert ``T_parent_child`` at ``stamp_ns`` (ignored when ``static``); returns whether it was stored.

        Raises ``ValueError`` for an empty or identical frame pair, a non-finite or non-rigid matrix, or a
        negative stamp. Returns False (data ignored, as tf2 does) for a dynamic sample older than the
        edge's cache window or one repeating a stored stamp. A different parent (or a static/dynamic
        switch) for a known child replaces its edge and is recorded (see ``take_reparent_events``).
        """
        parent = _check_frame(parent_frame, "parent frame")
        child = _check_frame(child_frame, "child frame")
        if parent == child:
            raise ValueError(f"transform with parent frame == child frame ('{child}') is not allowed")
        T = _check_se3(T_parent_child, parent, child)
        stamp_ns = int(stamp_ns)
        if stamp_ns < 0:
            raise ValueError(f"transform {parent} -> {child}: negative stamp {stamp_ns} ns")
        q = rotation_to_quaternion_xyzw(T[:3, :3])
        with self._cond:
            edge = self._edges.get(child)
            if edge is not None and (edge.parent != parent or edge.static != bool(static)):
                self._reparent_events.append(ReparentEvent(child, edge.parent, parent, edge.static, bool(static),
                                                           authority))
                edge = None
            if edge is None or static:
                edge = _Edge(parent=parent, static=bool(static), authority=authority)
                self._edges[child] = edge
            if static:
                stamp_ns = 0
            elif edge.stamps and stamp_ns < edge.stamps[-1] - self.cache_time_ns:
                return False
            i = bisect.bisect_left(edge.stamps, stamp_ns)
            if i < len(edge.stamps) and edge.stamps[i] == stamp_ns:
                return False
            edge.authority = authority
            for store, value in ((edge.stamps, stamp_ns), (edge.matrices, T), (edge.translations, T[:3, 3].copy()),
                                 (edge.quaternions, q)):
                store.insert(i, value)
            if not static:
                cut = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_time_ns)
                if cut:
                    for store in (edge.stamps, edge.matrices, edge.translations, edge.quaternions):
                        del store[:cut]
            self._frames.update((parent, child))
            self._cond.notify_all()
        return True

    def take_reparent_events(self) -> List[ReparentEvent]:
        """Re-parenting events since the last call (for the node to warn about), oldest first."""
        with self._cond:
            events, self._reparent_events = self._reparent_events, []
        return events

    def clear(self) -> None:
        """Drop every transform (e.g. after the clock jumped backwards: a looped bag, a simulator reset)."""
        with self._cond:
            self._edges.clear()
            self._frames.clear()

    # ------------------------------------------------------------------ queries
    def frames(self) -> List[str]:
        """Every frame seen so far (as parent or child), sorted."""
        with self._cond:
            return sorted(self._frames)

    def parent_of(self, frame: str) -> Optional[str]:
        """Current parent of ``frame`` (None for a root or an unknown frame)."""
        with self._cond:
            edge = self._edges.get(frame.lstrip("/"))
            return edge.parent if edge else None

    def latest_common_time(self, target_frame: str, source_frame: str) -> int:
        """Newest stamp (ns) at which every dynamic edge between the frames has data; 0 if all static."""
        with self._cond:
            return self._common_time(self._path(target_frame, source_frame, 0)[2])

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> np.ndarray:
        """``T_target_source`` (4x4 float64) at ``stamp_ns`` (0: latest common time).

        With ``timeout_s > 0`` waits up to that long for the transform to become available, then
        raises the error of the last attempt. Never call it with a timeout from the thread that feeds
        the buffer.
        """
        return self.lookup_stamped(target_frame, source_frame, stamp_ns, timeout_s)[0]

    def lookup_stamped(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
                       timeout_s: float = 0.0) -> Tuple[np.ndarray, int]:
        """Like ``lookup`` and also returns the stamp used (the latest common time when ``stamp_ns`` is 0)."""
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        with self._cond:
            while True:
                try:
                    return self._lookup_locked(target_frame, source_frame, int(stamp_ns))
                except TransformLookupError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise
                    self._cond.wait(remaining)

    def can_transform(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> bool:
        """Whether ``lookup`` would succeed (waiting up to ``timeout_s``); never raises a lookup error."""
        try:
            self.lookup_stamped(target_frame, source_frame, stamp_ns, timeout_s)
        except TransformLookupError:
            return False
        return True

    # ------------------------------------------------------------------ internals (lock held)
    def _lookup_locked(self, target_frame: str, source_frame: str, stamp_ns: int) -> Tuple[np.ndarray, int]:
        target, source, path = self._path(target_frame, source_frame, stamp_ns)
        if stamp_ns == 0:
            stamp_ns = self._common_time(path)
        dynamic = [(child, edge) for child, edge, _ in path if not edge.static]
        failing = [edge.interval(child) for child, edge in dynamic if not edge.covers(stamp_ns)]
        if failing:
            raise self._extrapolation_error(target, source, stamp_ns, dynamic, failing)
        T_anc_source = np.eye(4)
        T_anc_target = np.eye(4)
        for child, edge, from_source in reversed(path):  # ancestor end first: T_anc_x1 @ T_x1_x2 @ ...
            if from_source:
                T_anc_source = T_anc_source @ edge.at(stamp_ns)
            else:
                T_anc_target = T_anc_target @ edge.at(stamp_ns)
        return invert_transform(T_anc_target) @ T_anc_source, stamp_ns

    def _ancestors(self, frame: str) -> List[str]:
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
            if len(chain) > _MAX_TREE_DEPTH:
                raise ConnectivityError(f"the transform tree contains a loop through frame '{frame}' "
                                        f"(walk longer than {_MAX_TREE_DEPTH} edges)")
        return chain

    def _path(self, target_frame: str, source_frame: str, stamp_ns: int):
        """``(target, source, [(child, edge, on_source_side)])``: leaf-to-ancestor, source side then target side."""
        target = _check_frame(target_frame, "target frame")
        source = _check_frame(source_frame, "source frame")
        for frame, role in ((target, "target_frame"), (source, "source_frame")):
            if frame not in self._frames:
                known = ", ".join(sorted(self._frames)) or "none"
                when = format_stamp(stamp_ns) if stamp_ns else "the latest common time"
                raise UnknownFrameError(f"frame '{frame}' passed as {role} (lookup of '{source}' into '{target}' "
                                        f"at {when}) does not exist; known frames: {known}",
                                        frame, target, source, stamp_ns)
        up_source = self._ancestors(source)
        up_target = self._ancestors(target)
        on_target = {f: i for i, f in enumerate(up_target)}
        for i, frame in enumerate(up_source):
            if frame in on_target:
                j = on_target[frame]
                path = [(c, self._edges[c], True) for c in up_source[:i]]
                path += [(c, self._edges[c], False) for c in up_target[:j]]
                return target, source, path
        raise ConnectivityError(f"could not find a connection between '{target}' and '{source}' because they are not "
                                f"part of the same tree (root of '{target}': '{up_target[-1]}', root of '{source}': "
                                f"'{up_source[-1]}')", target, source, stamp_ns)

    @staticmethod
    def _common_time(path) -> int:
        latest = [edge.stamps[-1] for _, edge, _ in path if not edge.static]
        return min(latest) if latest else 0

    @staticmethod
    def _extrapolation_error(target: str, source: str, stamp_ns: int, dynamic, failing: Iterable[EdgeInterval]):
        failing = list(failing)
        edges = [edge.interval(child) for child, edge in dynamic]
        parts = []
        for iv in failing:
            if iv.earliest_ns == iv.latest_ns:
                where = f"only {format_stamp(iv.latest_ns)} is in the buffer"
            elif stamp_ns > iv.latest_ns:
                where = (f"extrapolation into the future by {(stamp_ns - iv.latest_ns) / _NS_PER_S:.9f} s, latest data "
                         f"at {format_stamp(iv.latest_ns)}")
            else:
                where = (f"extrapolation into the past by {(iv.earliest_ns - stamp_ns) / _NS_PER_S:.9f} s, earliest "
                         f"data at {format_stamp(iv.earliest_ns)}")
            parts.append(f"edge {iv.parent} -> {iv.child}: {where}")
        available = "; ".join(iv.describe() for iv in edges)
        message = (f"lookup of '{source}' into '{target}' at {format_stamp(stamp_ns)} would require extrapolation: "
                   f"{'; '.join(parts)} (available per dynamic edge: {available})")
        return ExtrapolationError(message, target, source, stamp_ns, edges, failing)
