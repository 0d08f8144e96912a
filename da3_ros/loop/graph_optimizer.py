"""``PoseGraphOptimizer``: optimises snapshots of the pose graph on a thread of its own, never on the
inference worker (like ``pipeline.map_fusion.MapFusionWorker``).

``request(graph)`` is O(graph copy) for the caller: it hands over ``graph.copy()`` and returns. The newest
request wins: one still waiting when a newer one arrives is replaced (counted ``coalesced``), because the
newer graph contains every constraint of the older one. After each optimisation ``on_result(result)`` is called
on the optimiser thread with the :class:`~da3_ros.loop.pose_graph.OptimizationResult`; ``latest()`` returns the
newest result. An exception (gtsam missing, a degenerate graph) is kept in ``stats()['last_error']`` and the
thread keeps serving.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from .pose_graph import OptimizationResult, PoseGraph

__all__ = ["PoseGraphOptimizer"]


class PoseGraphOptimizer:
    def __init__(self, on_result: Optional[Callable[[OptimizationResult], None]] = None,
                 max_iterations: int = 100, name: str = "da3_pose_graph"):
        self.on_result = on_result
        self.max_iterations = int(max_iterations)
        self._cond = threading.Condition()
        self._pending: Optional[PoseGraph] = None
        self._busy = False
        self._closed = False
        self._latest: Optional[OptimizationResult] = None
        self._runs = 0
        self._coalesced = 0
        self._last_error = ""
        self._thread_ident: Optional[int] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread_ident(self) -> Optional[int]:
        """The optimiser thread's ident (tests check that optimisation never runs on the caller's thread)."""
        return self._thread_ident

    def request(self, graph: PoseGraph) -> None:
        """Optimise a snapshot of ``graph`` soon (newest request wins)."""
        snapshot = graph.copy()
        with self._cond:
            if self._closed:
                raise RuntimeError("pose graph optimizer is closed")
            if self._pending is not None:
                self._coalesced += 1
            self._pending = snapshot
            self._cond.notify_all()

    def latest(self) -> Optional[OptimizationResult]:
        with self._cond:
            return self._latest

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no request is pending or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Finish the pending request, then stop the thread. Idempotent."""
        self.wait_idle(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def stats(self) -> dict:
        with self._cond:
            out = {"optimisations": self._runs, "coalesced": self._coalesced}
            if self._latest is not None:
                out.update(last_optimisation_ms=round(1e3 * self._latest.seconds, 2),
                           last_optimisation_keyframes=self._latest.keyframes,
                           last_optimisation_edges=self._latest.edges, last_optimisation_loops=self._latest.loops)
            if self._last_error:
                out["last_error"] = self._last_error
        return out

    def _run(self) -> None:
        self._thread_ident = threading.get_ident()
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                graph, self._pending = self._pending, None
                self._busy = True
            result = None
            try:
                result = graph.optimize(self.max_iterations)
                if self.on_result is not None:
                    self.on_result(result)
            except Exception as exc:   # one bad graph must not stop the optimiser
                with self._cond:
                    self._last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    if result is not None:
                        self._latest = result
                        self._runs += 1
                    self._busy = False
                    self._cond.notify_all()
