"""``RigWindowScale``: the metric scale of a rig's windows from its known extrinsics (ROS-free; scale_source
rig / rig_odometry).

Per window: ``estimate_rig_scale`` (``tracking.rig_scale``) on the predicted camera centres of the window's
distinct snapshots against the mounts ``T_base_cam`` gives metres per window unit. Its uncertainty is the larger
of ``estimate_rig_scale``'s (from a noise model) and the scatter of the recent windows' measurements
(``ConditionedScaleEstimator.spread``, from 5 windows on): a network noisier than the model makes windows
``scatter_too_large`` (above ``RigScaleConfig.max_rel_uncertainty``) instead of trusted (state ``ok``). Each
accepted window that the noise model trusts (``ok`` or ``scatter_too_large``) measures metres per odometry unit
(``rig scale / tracker scale``); their robust centre (``ConditionedScaleEstimator`` over the last windows) is the
odometry frame's scale (``estimate``). Windows whose estimate is not trusted (``baseline_too_short``,
``scatter_too_large``, ``inconsistent``, ``degenerate``, ``no_mount``) are counted by state (``windows``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import List, Optional, Sequence

import numpy as np

from ..tracking.conditioned_scale import ConditionedScaleConfig, ConditionedScaleEstimator
from ..tracking.metric_scale import ScaleEstimate
from ..tracking.rig_scale import RigScaleConfig, RigScaleEstimate, estimate_rig_scale

__all__ = ["RigWindowScale"]

#: the estimate states whose window measures the odometry frame's scale (the noise model trusts them)
MEASURED_STATES = ("ok", "scatter_too_large")


class RigWindowScale:
    """See the module docstring. ``num_cameras`` = C (views are snapshot-major: view ``j * C + c``)."""

    def __init__(self, num_cameras: int, config: Optional[RigScaleConfig] = None):
        self.num_cameras = int(num_cameras)
        self.config = config if config is not None else RigScaleConfig()
        self.fit = ConditionedScaleEstimator(ConditionedScaleConfig(measurement="trusted rig windows"))
        self.last: Optional[RigScaleEstimate] = None
        self.windows = {"ok": 0, "baseline_too_short": 0, "scatter_too_large": 0, "inconsistent": 0,
                        "degenerate": 0, "no_mount": 0}

    @property
    def estimate(self) -> ScaleEstimate:
        """Metres per odometry unit of the odometry frame from the measured windows."""
        return self.fit.estimate

    def reset(self, reason: str) -> None:
        """A new odometry frame and unit: the measurements restart."""
        self.fit.reset(reason)

    def _counted(self, state: str, est: Optional[RigScaleEstimate]) -> Optional[RigScaleEstimate]:
        self.windows[state] = self.windows.get(state, 0) + 1
        self.last = est
        return est

    def measure(self, snapshot_ids: Sequence, T_window_cam: np.ndarray, current_depth: np.ndarray,
                mounts: List[Optional[np.ndarray]]) -> Optional[RigScaleEstimate]:
        """The window's metres per window unit. ``snapshot_ids``: the window's snapshot ids (oldest first,
        repeats while padded); ``T_window_cam`` (N, 4, 4) the predicted camera-to-window poses; ``current_depth``
        (C, h, w) the current snapshot's predicted depth (sets the noise model); ``mounts`` per camera."""
        if any(M is None for M in mounts):
            return self._counted("no_mount", None)
        C = self.num_cameras
        first = sorted({i: j for j, i in reversed(list(enumerate(snapshot_ids)))}.values())   # first view of each
        poses = np.stack([T_window_cam[j * C:(j + 1) * C] for j in first])        # (K, C, 4, 4)
        sub = current_depth[:, ::8, ::8]   # the scene depth only sets the noise model: every 64th pixel is plenty
        d = sub[np.isfinite(sub) & (sub > 0)]
        scene_depth = float(np.median(d)) if d.size else float("nan")
        try:
            est = estimate_rig_scale(poses, np.stack(mounts), scene_depth, self.config)
        except ValueError:
            return self._counted("degenerate", None)
        spread = self.fit.spread()
        if est.state in ("ok", "baseline_too_short") and spread is not None and spread > est.relative_uncertainty:
            # the windows scatter more than the noise model says (a noisier network): trust that scatter instead
            noisy = spread > self.config.max_rel_uncertainty
            est = replace(est, relative_uncertainty=spread, rel_sigma_windows=spread,
                          state="scatter_too_large" if noisy else est.state)
        elif spread is not None:
            est = replace(est, rel_sigma_windows=spread)
        return self._counted(est.state, est)

    def add(self, est: Optional[RigScaleEstimate], window_scale: float, tracked: bool, reinitialised: bool) -> None:
        """The window's measurement of metres per odometry unit (``window_scale``: odometry units per window
        unit), when it is measured and the window was tracked."""
        measured = est is not None and est.state in MEASURED_STATES and tracked
        self.fit.add(window_scale / est.scale if measured else None, conditioned=True, reinitialised=reinitialised)

    def describe(self) -> dict:
        info = {"rig_scale_windows": ", ".join(f"{k} {v}" for k, v in self.windows.items())}
        if self.last is not None:
            info["rig_scale_window"] = self.last.summary()
            info["rig_scale_state"] = self.last.state
        return info
