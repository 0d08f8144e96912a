"""Metric scale of the visual odometry from pose-conditioned windows (ROS-free; ``pose_source: tf``).

A pose-conditioned window aligned back to its given TF poses (``PoseConditionedWindow.align``) has depth
and camera poses in metres. When the tracker aligns that window into the odometry frame, its Sim(3)
scale ``FrameResult.scale`` is odometry units per window unit = odometry units per metre, so each such
window measures ``1 / FrameResult.scale`` metres per odometry unit.

``ConditionedScaleEstimator``: the median of the log of those measurements over the last
``max_windows`` conditioned, accepted windows (robust against a window the network did not follow);
relative uncertainty = ``1.4826 MAD / sqrt(n)`` (standard error of the median-like centre, floored at
``min_relative_uncertainty``); ``known`` from ``min_windows`` measurements on. Windows that could not be
conditioned (no baseline, missing TF) give no measurement. A tracker re-initialisation or reset starts
a new odometry unit: forget everything. Returns the same :class:`ScaleEstimate` as the odometry-based
estimator, so /diagnostics and the node treat both alike.

Placed windows (issue 19: a pose-conditioned window is placed by SE(3), never rescaled): the measurement is
the window's ``FrameResult.stats["keyframe_depth_ratio"]`` (its depth of the shared keyframes over their stored
metric depth, ~1); the estimate is then never applied, ``relative_uncertainty()`` is the uncertainty of the
published metres.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional

import numpy as np

from .metric_scale import KNOWN, ScaleEstimate, UNKNOWN

__all__ = ["ConditionedScaleConfig", "ConditionedScaleEstimator"]


@dataclass(frozen=True)
class ConditionedScaleConfig:
    max_windows: int = 50
    min_windows: int = 3
    max_relative_uncertainty: float = 0.05
    min_relative_uncertainty: float = 0.001
    #: what a measurement is, for the reasons on /diagnostics (the rig processor: "rig windows")
    measurement: str = "pose-conditioned windows"

    def __post_init__(self):
        if self.min_windows < 1 or self.max_windows < self.min_windows:
            raise ValueError("need 1 <= min_windows <= max_windows")
        if not self.max_relative_uncertainty > 0 or self.min_relative_uncertainty < 0:
            raise ValueError("need max_relative_uncertainty > 0 and min_relative_uncertainty >= 0")


class ConditionedScaleEstimator:
    def __init__(self, config: Optional[ConditionedScaleConfig] = None):
        self.config = config if config is not None else ConditionedScaleConfig()
        self._log: Deque[float] = deque(maxlen=self.config.max_windows)
        self._estimate = ScaleEstimate(reason=f"no {self.config.measurement} yet")
        self.resets = 0

    @property
    def estimate(self) -> ScaleEstimate:
        return self._estimate

    def spread(self, min_measurements: int = 5) -> Optional[float]:
        """Relative spread of ONE measurement (``1.4826 MAD`` of the log measurements; not divided by sqrt(n)),
        None with fewer than ``min_measurements``: how far a single window's scale is from the others."""
        n = len(self._log)
        if n < max(int(min_measurements), 2):
            return None
        x = np.asarray(self._log)
        return 1.4826 * float(np.median(np.abs(x - np.median(x))))

    def relative_uncertainty(self) -> Optional[float]:
        """The current relative uncertainty of the estimate (``1.4826 MAD / sqrt(n)`` of the log measurements,
        floored at ``min_relative_uncertainty``), whether or not it is known; None with fewer than 2."""
        n = len(self._log)
        if n < 2:
            return None
        x = np.asarray(self._log)
        mad = float(np.median(np.abs(x - np.median(x))))
        return max(1.4826 * mad / np.sqrt(n), self.config.min_relative_uncertainty)

    def reset(self, reason: str = "reset") -> None:
        self._log.clear()
        self.resets += 1
        self._estimate = ScaleEstimate(reason=f"{reason}; no {self.config.measurement} yet")

    def add(self, window_scale: Optional[float], conditioned: bool, reinitialised: bool = False,
            note: str = "") -> ScaleEstimate:
        """One tracked frame: ``window_scale`` = ``FrameResult.scale`` (odometry units per window unit;
        None or NaN for a rejected window), ``conditioned``: the window was aligned to TF poses (metres)."""
        if reinitialised:
            self.reset("visual odometry re-initialised")
        if conditioned and window_scale is not None and np.isfinite(window_scale) and window_scale > 0:
            self._log.append(-float(np.log(window_scale)))
        self._estimate = self._fit(note)
        return self._estimate

    def _fit(self, note: str) -> ScaleEstimate:
        cfg = self.config
        n = len(self._log)
        if n == 0:
            return ScaleEstimate(reason=note or f"no {cfg.measurement} yet")
        x = np.asarray(self._log)
        med = float(np.median(x))
        rel = max(1.4826 * float(np.median(np.abs(x - med))) / np.sqrt(n), cfg.min_relative_uncertainty)
        scale = float(np.exp(med))
        base = dict(provisional_scale=scale, n_pairs=n, n_frames=n, pairs_added=1, frame_used=True)
        if n < cfg.min_windows:
            return ScaleEstimate(state=UNKNOWN, reason=f"{n} of {cfg.min_windows} {cfg.measurement}", **base)
        if rel > cfg.max_relative_uncertainty:
            return ScaleEstimate(state=UNKNOWN, reason=f"uncertainty {100 * rel:.2g} % > "
                                                       f"{100 * cfg.max_relative_uncertainty:g} %", **base)
        return ScaleEstimate(state=KNOWN, scale=scale, uncertainty=scale * rel, relative_uncertainty=rel,
                             reason=note or f"from {cfg.measurement}", **base)
