"""Thread-safe frame accounting and timing statistics for diagnostics (ROS-free).

Invariant (checked by the tests): ``received == processed + dropped + pending`` where ``dropped``
is the sum of the drop reasons (``busy``: replaced by a newer frame while inference was running;
``rate``: above ``max_rate_hz``; ``bad_input``: rejected by validation; ``failed``: the pipeline
raised; ``no_odometry``: a pose-conditioned window lacked a view's odometry pose, see
``pipeline.window_dropped``) and ``pending`` is 0 or 1 (the frame waiting in the mailbox or being processed).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

DROP_REASONS = ("busy", "rate", "bad_input", "failed", "no_odometry")


class RateMeter:
    """Events per second over a sliding time window."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class LatencyWindow:
    """The last ``size`` samples (seconds) with percentiles in milliseconds."""

    def __init__(self, size: int = 200):
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(float(seconds))

    def percentile_ms(self, q: float) -> float:
        if not self._samples:
            return float("nan")
        return float(np.percentile(np.asarray(self._samples), q) * 1e3)

    def __len__(self) -> int:
        return len(self._samples)


class FrameAccounting:
    def __init__(self):
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.pending = 0
        self.drops: Counter[str] = Counter()
        self.events: Counter[str] = Counter()   # resets, rejected windows, bad camera_info, ...
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.stage_latency: dict[str, LatencyWindow] = {}
        self.last_error = ""
        self.last_event = ""

    def on_received(self) -> None:
        with self._lock:
            self.received += 1
            self.pending += 1
            self.input_rate.tick()

    def on_dropped(self, reason: str, error: str = "") -> None:
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        with self._lock:
            self.drops[reason] += 1
            self.pending -= 1
            if error:
                self.last_error = error

    def on_processed(self, stage_seconds: dict[str, float]) -> None:
        with self._lock:
            self.processed += 1
            self.pending -= 1
            self.output_rate.tick()
            for stage, seconds in stage_seconds.items():
                self.stage_latency.setdefault(stage, LatencyWindow()).add(seconds)

    def on_event(self, name: str, message: str = "", *, error: bool = False) -> None:
        """Count a stream event (resets, rejected windows, ...); ``error`` ones set ``last_error``."""
        with self._lock:
            self.events[name] += 1
            if message:
                if error:
                    self.last_error = message
                else:
                    self.last_event = message

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def snapshot(self) -> dict:
        """A consistent copy of every counter and statistic (JSON-friendly)."""
        with self._lock:
            snap = {
                "received": self.received,
                "processed": self.processed,
                "dropped": self.dropped,
                "pending": self.pending,
                **{f"dropped_{r}": self.drops[r] for r in DROP_REASONS},
                **{k: v for k, v in sorted(self.events.items())},
                "input_rate_hz": round(self.input_rate.rate(), 3),
                "processed_rate_hz": round(self.output_rate.rate(), 3),
                "last_error": self.last_error,
                "last_event": self.last_event,
            }
            for stage, window in sorted(self.stage_latency.items()):
                snap[f"{stage}_p50_ms"] = round(window.percentile_ms(50), 3)
                snap[f"{stage}_p95_ms"] = round(window.percentile_ms(95), 3)
        return snap
