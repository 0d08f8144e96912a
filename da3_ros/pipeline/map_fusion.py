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
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Optional

import numpy as np

from .voxel_map import VoxelMap

MapUpdateCallback = Callable[[int, np.ndarray, Optional[np.ndarray]], None]

_CLEAR = object()


class MapFusionWorker:
    def __init__(self, voxel_map: VoxelMap, on_update: Optional[MapUpdateCallback] = None,
                 max_pending: int = 32, name: str = "da3_map_fusion"):
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
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- producer side (inference worker) ----------------------------------------------------
    def submit(self, key, stamp_ns: int, points: np.ndarray, colours: Optional[np.ndarray],
               T_odom_points: Optional[np.ndarray]) -> None:
        """Queue one keyframe cloud (camera-frame ``points`` + its pose, or odometry-frame points).

        The arrays must not be modified afterwards (the processor builds a fresh cloud per frame)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("map fusion worker is closed")
            if len(self._queue) >= self.max_pending:
                self._submit_waits += 1
                while len(self._queue) >= self.max_pending and not self._closed:
                    self._cond.wait(0.1)
            self._queue.append((key, int(stamp_ns), points, colours, T_odom_points))
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
                    self._points = 0
                else:
                    self._fuse(*item)
            except Exception as exc:  # one bad keyframe must not stop the map
                self._last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _fuse(self, key, stamp_ns, points, colours, T_odom_points) -> None:
        t = time.perf_counter()
        self.map.add_keyframe(key, points, colours, T_odom_points=T_odom_points)
        xyz, rgb = self.map.points()
        with self._cond:
            self._fuse_seconds.append(time.perf_counter() - t)
            self._fused += 1
            self._points = len(xyz)
        if self.on_update is not None:
            self.on_update(stamp_ns, xyz, rgb)
