"""``MapFusionWorker``: fuses keyframe clouds into the ``VoxelMap`` on a thread of its own (ROS-free).

The inference worker only hands a keyframe over (``submit``: O(1), no copy of the cloud), so the
fused map never sets the frame rate: adding a 640x480 keyframe to a 200k-point map costs ~10 ms of
CPU here (BENCHMARKS.md, "Fused map"), about the inference time of a window on a GPU.

No keyframe is lost: submissions and ``clear`` requests are executed in order by one thread. The
queue is bounded (``max_pending`` keyframes, ~1 MB each at 640x480 stride 2); a full queue makes
``submit`` wait for room instead of dropping (back-pressure onto the inference worker, counted in
``stats()['submit_waits']``). Keyframes arrive at most once per processed frame and usually every
several frames, so the queue is empty in steady state.

After each fused keyframe ``on_update(stamp_ns, points, colours)`` is called on the fusion thread
with the map's read-only views (valid during the call; copy to keep them), so the node publishes
``map_points`` with the stamp of the keyframe that produced it.

Loop closure (``keep_submaps=True``): each keyframe's cloud is also kept as a sub-map in its own frame
(voxel-downsampled, with its odometry pose); it is fused with ``T_map_odom @ T_odom_points`` (the correction
given to ``submit``), and ``rebuild(corrections)`` re-fuses every kept sub-map with its keyframe's new
correction (``corrections[key[0]]``: the snapshot's ``T_map_kf @ inv(T_odom_kf)``), in order with the
submissions, so ``map_points`` follows the optimised poses. ``call(fn)`` runs ``fn(voxel_map)`` on the map
thread, in order, and returns its result (a consistent copy for ``save_map``).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Optional

import numpy as np

from .voxel_map import VoxelMap, voxel_downsample

MapUpdateCallback = Callable[[int, np.ndarray, Optional[np.ndarray]], None]

_CLEAR = object()


class _Call:
    """A function to run on the map thread and its result (``MapFusionWorker.call``)."""

    def __init__(self, fn):
        self.fn = fn
        self.done = threading.Event()
        self.result = None
        self.error: Optional[BaseException] = None


class MapFusionWorker:
    def __init__(self, voxel_map: VoxelMap, on_update: Optional[MapUpdateCallback] = None,
                 max_pending: int = 32, name: str = "da3_map_fusion", keep_submaps: bool = False):
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.map = voxel_map
        self.on_update = on_update
        self.max_pending = int(max_pending)
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._fused = 0
        self._submit_waits = 0
        self._max_queued = 0
        self._fuse_seconds: deque = deque(maxlen=256)
        self._points = 0
        self._last_error = ""
        self.keep_submaps = bool(keep_submaps)
        self._submaps: dict = {}     # key -> (points, colours, T_odom_points), insertion order (map thread only)
        self._rebuilds = 0
        self._stamp_ns: Optional[int] = None   # the newest fused keyframe's stamp (a rebuilt map's stamp)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- producer side (inference worker) ----------------------------------------------------
    def submit(self, key, stamp_ns: int, points: np.ndarray, colours: Optional[np.ndarray],
               T_odom_points: Optional[np.ndarray], T_map_odom: Optional[np.ndarray] = None) -> None:
        """Queue one keyframe cloud (camera-frame ``points`` + its pose, or odometry-frame points); fused with
        ``T_map_odom @ T_odom_points`` when a correction is given (loop closure).

        The arrays must not be modified afterwards (the processor builds a fresh cloud per frame)."""
        self._put((key, int(stamp_ns), points, colours, T_odom_points, T_map_odom))

    def rebuild(self, corrections: dict) -> None:
        """Re-fuse every kept sub-map with ``corrections[key[0]]`` (missing: its last correction), after the
        keyframes already queued."""
        with self._cond:
            self._queue.append(("rebuild", dict(corrections)))
            self._cond.notify_all()

    def call(self, fn, timeout: float = 30.0):
        """``fn(voxel_map)`` on the map thread after the queued requests; its result (its exception re-raised)."""
        request = _Call(fn)
        with self._cond:
            if self._closed:
                raise RuntimeError("map fusion worker is closed")
            self._queue.append(request)
            self._cond.notify_all()
        if not request.done.wait(timeout):
            raise TimeoutError(f"the map thread did not answer within {timeout} s")
        if request.error is not None:
            raise request.error
        return request.result

    def _put(self, item) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("map fusion worker is closed")
            if len(self._queue) >= self.max_pending:
                self._submit_waits += 1
                while len(self._queue) >= self.max_pending and not self._closed:
                    self._cond.wait(0.1)
            self._queue.append(item)
            self._max_queued = max(self._max_queued, len(self._queue))
            self._cond.notify_all()

    def clear(self) -> None:
        """Clear the map after the keyframes already queued (trajectory reset)."""
        with self._cond:
            self._queue.append(_CLEAR)
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued request is done; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued keyframes, then stop the thread. Idempotent."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def stats(self) -> dict:
        with self._cond:
            seconds = sorted(self._fuse_seconds)
            out = {"map_points": self._points, "map_keyframes_fused": self._fused,
                   "map_queue": len(self._queue), "map_queue_max": self._max_queued,
                   "map_submit_waits": self._submit_waits}
            if self.keep_submaps:
                out.update(map_submaps=len(self._submaps), map_rebuilds=self._rebuilds)
            if self._last_error:
                out["map_last_error"] = self._last_error
        if seconds:
            out["map_fuse_ms_p50"] = round(1e3 * seconds[len(seconds) // 2], 2)
            out["map_fuse_ms_p95"] = round(1e3 * seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 2)
        return out

    # -- fusion thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:     # closed and drained
                    return
                item = self._queue.popleft()
                self._busy = True
                self._cond.notify_all()   # room for a waiting submit
            try:
                if item is _CLEAR:
                    self.map.clear()
                    self._submaps.clear()
                    self._points = 0
                elif isinstance(item, _Call):
                    self._answer(item)
                elif item[0] == "rebuild":
                    self._rebuild(item[1])
                else:
                    self._fuse(*item)
            except Exception as exc:  # one bad keyframe must not stop the map
                self._last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _answer(self, request: _Call) -> None:
        try:
            request.result = request.fn(self.map)
        except Exception as exc:   # handed back to the caller
            request.error = exc
        finally:
            request.done.set()

    def _rebuild(self, corrections: dict) -> None:
        self.map.clear()
        for key, (points, colours, T_odom_points, T_map_odom) in list(self._submaps.items()):
            C = corrections.get(key[0] if isinstance(key, tuple) else key, T_map_odom)
            self._submaps[key] = (points, colours, T_odom_points, C)
            self.map.add_keyframe(key, points, colours, T_odom_points=C @ T_odom_points)
        self._rebuilds += 1
        xyz, rgb = self.map.points()
        with self._cond:
            self._points = len(xyz)
        if self.on_update is not None and self._stamp_ns is not None:
            self.on_update(self._stamp_ns, xyz, rgb)

    def _fuse(self, key, stamp_ns, points, colours, T_odom_points, T_map_odom=None) -> None:
        t = time.perf_counter()
        T = T_odom_points
        if T_map_odom is not None:
            T = T_map_odom @ (np.eye(4) if T_odom_points is None else T_odom_points)
        if self.keep_submaps:
            flat = np.asarray(points, np.float32).reshape(-1, 3)
            ok = np.isfinite(flat).all(axis=1)
            local, local_colours = voxel_downsample(
                flat[ok], None if colours is None else np.asarray(colours).reshape(-1, 3)[ok], self.map.voxel_size)
            self._submaps[key] = (local, local_colours, np.eye(4) if T_odom_points is None else T_odom_points,
                                  np.eye(4) if T_map_odom is None else T_map_odom)
        self._stamp_ns = int(stamp_ns)
        self.map.add_keyframe(key, points, colours, T_odom_points=T)
        xyz, rgb = self.map.points()
        with self._cond:
            self._fuse_seconds.append(time.perf_counter() - t)
            self._fused += 1
            self._points = len(xyz)
        if self.on_update is not None:
            self.on_update(stamp_ns, xyz, rgb)
