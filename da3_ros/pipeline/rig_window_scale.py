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
``scatter_too_large``, ``inconsistent``, ``unsynchronised``, ``degenerate``, ``no_mount``) are counted by state
(``windows``).

Unsynchronised cameras (issue 19): each snapshot's ``RigSnapshotTiming`` carries its cameras' stamps and, when the
robot odometry gave every camera's pose at its own stamp, the mounts moved by the base motion between those stamps
(``motion_compensated_mounts``): the known geometry of that snapshot. A snapshot without them whose stamps differ
is measured against the static mounts and the error its stamp offsets may cause (``unsynchronised_rel_error``,
from the window's own motion) widens the uncertainty; /diagnostics: ``rig_stamp_offset_ms`` (the latest
snapshot's largest offset from the reference camera), ``rig_stamp_compensation``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Mapping, Optional, Sequence

import numpy as np

from ..tracking.conditioned_scale import ConditionedScaleConfig, ConditionedScaleEstimator
from ..tracking.metric_scale import ScaleEstimate
from ..tracking.rig_scale import (RigScaleConfig, RigScaleEstimate, estimate_rig_scale, motion_compensated_mounts,
                                  unsynchronised_rel_error)

__all__ = ["RigSnapshotTiming", "RigWindowScale"]


@dataclass(frozen=True)
class RigSnapshotTiming:
    """One snapshot's camera stamps (ns, camera order) and ``T_base0_cam`` (C, 4, 4): each camera's mount at the
    reference camera's instant (``motion_compensated_mounts``), None when the odometry at some camera's stamp is
    not known (then the snapshot is not compensated)."""

    stamps_ns: tuple
    T_base0_cam: Optional[np.ndarray] = None

    @classmethod
    def of(cls, stamps_ns: Sequence[int], mounts: Sequence[Optional[np.ndarray]],
           T_odometry_base: Sequence[Optional[np.ndarray]]) -> "RigSnapshotTiming":
        """From the cameras' stamps, mounts and the odometry at each camera's stamp (None entries: unknown)."""
        stamps = tuple(int(t) for t in stamps_ns)
        if any(M is None for M in mounts):
            return cls(stamps)
        return cls(stamps, motion_compensated_mounts(np.stack(mounts), T_odometry_base))

    @property
    def offset_s(self) -> float:
        """The largest stamp offset from the reference camera (seconds)."""
        return max(abs(t - self.stamps_ns[0]) for t in self.stamps_ns) * 1e-9

    @property
    def compensated(self) -> bool:
        return self.T_base0_cam is not None

    def mounts(self, static: np.ndarray) -> np.ndarray:
        """The known geometry of this snapshot: the compensated mounts, else the static ones."""
        return self.T_base0_cam if self.T_base0_cam is not None else static

    def residual_stamps_s(self) -> np.ndarray:
        """The stamps whose offsets are NOT compensated (a compensated snapshot: all the reference camera's)."""
        stamps = np.asarray(self.stamps_ns, np.float64)
        return (np.full_like(stamps, stamps[0]) if self.compensated else stamps) * 1e-9


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
                        "unsynchronised": 0, "degenerate": 0, "no_mount": 0}
        self.last_timing: Optional[RigSnapshotTiming] = None

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
                mounts: List[Optional[np.ndarray]],
                timing: Optional[Mapping[object, RigSnapshotTiming]] = None) -> Optional[RigScaleEstimate]:
        """The window's metres per window unit. ``snapshot_ids``: the window's snapshot ids (oldest first,
        repeats while padded); ``T_window_cam`` (N, 4, 4) the predicted camera-to-window poses; ``current_depth``
        (C, h, w) the current snapshot's predicted depth (sets the noise model); ``mounts`` per camera;
        ``timing``: each snapshot's ``RigSnapshotTiming`` (missing: synchronised, the static mounts)."""
        timing = timing or {}
        self.last_timing = timing.get(snapshot_ids[-1]) if len(snapshot_ids) else None
        if any(M is None for M in mounts):
            return self._counted("no_mount", None)
        C = self.num_cameras
        first = sorted({i: j for j, i in reversed(list(enumerate(snapshot_ids)))}.values())   # first view of each
        poses = np.stack([T_window_cam[j * C:(j + 1) * C] for j in first])        # (K, C, 4, 4)
        sub = current_depth[:, ::8, ::8]   # the scene depth only sets the noise model: every 64th pixel is plenty
        d = sub[np.isfinite(sub) & (sub > 0)]
        scene_depth = float(np.median(d)) if d.size else float("nan")
        static = np.stack(mounts)
        snaps = [timing.get(snapshot_ids[j]) for j in first]
        known = np.stack([static if t is None else t.mounts(static) for t in snaps])           # (K, C, 4, 4)
        try:
            unsync = 0.0
            if all(t is not None for t in snaps):   # every snapshot's timing known (absolute stamps)
                unsync = unsynchronised_rel_error(poses, np.stack([t.residual_stamps_s() for t in snaps]))
            est = estimate_rig_scale(poses, known, scene_depth, self.config, unsynchronised_rel=unsync)
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
        timing = self.last_timing
        if timing is not None:
            info["rig_stamp_offset_ms"] = round(timing.offset_s * 1e3, 3)
            if timing.offset_s == 0.0:
                info["rig_stamp_compensation"] = "synchronised (one stamp)"
            elif timing.compensated:
                info["rig_stamp_compensation"] = "odometry (base motion between the cameras' stamps)"
            else:
                widened = self.last.rel_sigma_unsynchronised if self.last is not None else float("nan")
                info["rig_stamp_compensation"] = ("none: no odometry at every camera's stamp; scale uncertainty "
                                                  f"widened by {100 * widened:.3g} %")
        if self.last is not None:
            info["rig_scale_window"] = self.last.summary()
            info["rig_scale_state"] = self.last.state
        return info
