"""Metric scale of the visual odometry from the robot's own odometry (ROS-free; ``scale_source: odometry``).

``OdometryScaleEstimator`` is fed, per processed frame, the visual camera pose ``T_vis_cam`` (the
tracker's ``T_odom_cam``, in odometry units ``u``) and the robot odometry pose ``T_odomwheel_base``
(metres; e.g. wheel odometry looked up in TF at the image stamp). It estimates ``scale`` in metres per
odometry unit: multiply visual depths, translations and map points by it to get metres.

Method
------
1. **Compare the camera's motion on both sides.** The robot odometry gives the base pose; with the
   static, metric ``T_base_cam`` it gives the camera pose in metres, ``T_odomwheel_cam =
   T_odomwheel_base @ T_base_cam``. Comparing camera (not base) centres keeps the metric lever arm
   out of the unknown scale: the base pose from vision, ``T_vis_cam @ T_cam_base``, would need the
   scale to place the base (its lever arm is in metres, the visual pose in units).
2. **Pairs with enough baseline.** For each new frame j, pairs (i, j) with earlier frames i of the
   current horizon whose *base* chord (robot odometry) is in ``[min_baseline_m, max_baseline_m]``;
   when the scene's median depth (visual units) is given, the visual camera chord must also be at
   least ``min_visual_baseline_rel`` x that depth (the motion is resolvable in the images). At most
   ``max_pairs_per_frame`` partners per frame, spread evenly over the eligible ones (short and long
   baselines).
3. **Rotation-only motion is ignored**: a frame whose base moved less than ``min_step_m`` since the
   last frame taken (standing still or turning in place) is not used at all: turning in place, the
   camera swings on its lever arm but a monocular tracker's translation is ill-conditioned, and
   standing frames would only repeat the same displacement with correlated errors. The baseline
   gate also uses the base chord, which is ~0 for a turn in place.
4. **Pair ratio**: ``r = |c_wheel_j - c_wheel_i| / |c_vis_j - c_vis_i|``. Lengths of relative
   motions are invariant to the (unknown, different) orientations and origins of the two odometry
   frames, and, taken between frames close in time, barely affected by slow heading drift of either
   side. A direction gate rejects pairs whose displacement, expressed in camera i's frame on each
   side, differs by more than ``max_direction_error_deg`` (corrupt visual poses, a wrong
   ``T_base_cam``).
5. **Robust fit**: log-ratios ``x`` with weights ``b^2`` (``b`` = base chord: the inverse variance
   of a ratio whose error is a fixed per-frame position noise); weighted median ``m``; residuals
   standardised by the baseline, ``z = (x - m) b / median(b)``, and their MAD give a robust sigma
   (floor ``min_sigma``); pairs with ``|z|`` beyond ``outlier_k`` sigmas are rejected;
   ``scale = exp(weighted mean of the inlier log-ratios)``.
6. **Uncertainty**: the standard error of that mean by a delete-one-frame jackknife (pairs sharing
   a frame share its pose error, so pairs are not independent samples), relative
   (``relative_uncertainty``) and in m/unit (``uncertainty``). On the synthetic robot its spread
   matches the observed error over seeds (``test_metric_scale``). It is statistical only: a bias
   of the robot odometry itself (e.g. a wheel radius 2 % off) passes straight into the scale and
   cannot be seen from these data.
7. **Sliding horizon**: frames older than ``horizon_s`` cannot start new pairs, and a pair is
   dropped once its older frame is more than ``horizon_s`` before the newest *pair* (so a drifting
   visual scale is followed). The horizon is counted from the newest pair rather than the newest
   frame, so that while the robot stands still or turns in place (no new pairs) the estimate is
   held, not forgotten.
8. **State**: ``"unknown"`` until ``min_pairs`` inlier pairs over ``min_frames`` frames exist and the
   relative uncertainty is at most ``max_relative_uncertainty``; then ``"known"``.

Resets and time: ``add(..., reinitialised=True)`` or ``reset()`` (a new visual odometry frame or
scale: the tracker re-initialised, ``~/reset``, a bag loop) forget everything. A stamp earlier than
the previous one resets too (time jumped back); a forward gap larger than ``max_gap_s`` drops the
frame history (no pair spans the gap) but keeps the pairs already measured, since the visual scale
is unchanged unless the tracker says so.

Assumptions: the visual poses are of one rigid odometry frame with one scale over the horizon
(Sim(3)-consistent; the horizon absorbs slow drift); ``T_base_cam`` is accurate; robot odometry
and image stamps are synchronised (the lookup is at the image stamp).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import numpy as np

from da3_ros.geometry.alignment import weighted_median

__all__ = ["ScaleEstimatorConfig", "ScaleEstimate", "OdometryScaleEstimator", "fuse_scale_estimates"]

UNKNOWN = "unknown"
KNOWN = "known"


@dataclass(frozen=True)
class ScaleEstimatorConfig:
    """Parameters of ``OdometryScaleEstimator`` (see the module docstring for their role)."""

    min_baseline_m: float = 0.10             # base chord of a pair (robot odometry), metres
    min_step_m: float = 0.02                 # base motion since the last frame taken, else the frame is skipped
    max_baseline_m: float = 3.0              # longer pairs accumulate odometry drift
    min_visual_baseline_rel: float = 0.02    # visual camera chord / median scene depth (when given)
    max_direction_error_deg: float = 20.0    # visual vs odometry displacement direction in camera i
    horizon_s: float = 20.0                  # sliding horizon of frames and pairs, seconds
    max_gap_s: float = 2.0                   # larger forward stamp gaps drop the frame history
    max_pairs_per_frame: int = 8
    max_pairs: int = 4000                    # memory bound (the oldest pairs go first)
    min_pairs: int = 10
    min_frames: int = 5
    max_relative_uncertainty: float = 0.05
    outlier_k: float = 3.0
    min_sigma: float = 0.005                 # floor of the robust sigma of the log-ratios (0.5 %)

    def __post_init__(self):
        if not 0 < self.min_baseline_m < self.max_baseline_m:
            raise ValueError(f"need 0 < min_baseline_m < max_baseline_m, got {self.min_baseline_m}, "
                             f"{self.max_baseline_m}")
        if not 0 <= self.min_step_m < self.min_baseline_m:
            raise ValueError(f"need 0 <= min_step_m < min_baseline_m, got {self.min_step_m}")
        for name in ("horizon_s", "max_gap_s", "max_relative_uncertainty", "outlier_k", "min_sigma",
                     "max_direction_error_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.min_visual_baseline_rel < 0:
            raise ValueError(f"min_visual_baseline_rel must be >= 0, got {self.min_visual_baseline_rel}")
        if self.max_pairs_per_frame < 1 or self.min_pairs < 1 or self.min_frames < 2 or self.max_pairs < self.min_pairs:
            raise ValueError("need max_pairs_per_frame >= 1, min_pairs >= 1, min_frames >= 2, max_pairs >= min_pairs")


@dataclass(frozen=True)
class ScaleEstimate:
    """The estimator's state after a frame.

    ``scale``: metres per odometry unit (None while ``state == "unknown"``; ``provisional_scale``
    has the current fit whenever there is at least one pair). ``uncertainty``: standard error in
    m/unit; ``relative_uncertainty``: the same divided by the scale. ``n_pairs``: inlier pairs used;
    ``n_rejected``: pairs rejected as outliers by the robust fit; ``n_frames``: distinct frames in the
    inlier pairs; ``n_direction_rejected``: candidate pairs refused by the direction gate since the
    last reset (many of them point at a wrong ``T_base_cam``); ``pairs_added``: pairs formed by the
    latest frame; ``frame_used``: False when the latest frame was skipped (the base stood still or
    turned in place); ``reason``: why unknown / what happened (reset, gap).
    """

    state: str = UNKNOWN
    scale: Optional[float] = None
    uncertainty: Optional[float] = None
    relative_uncertainty: Optional[float] = None
    provisional_scale: Optional[float] = None
    n_pairs: int = 0
    n_rejected: int = 0
    n_direction_rejected: int = 0
    n_frames: int = 0
    pairs_added: int = 0
    frame_used: bool = False
    reason: str = "no pairs yet"

    @property
    def known(self) -> bool:
        return self.state == KNOWN

    @property
    def unit(self) -> str:
        """Unit of the outputs once scaled by this estimate: ``"m"``, or ``"odometry units"`` while unknown."""
        return "m" if self.known else "odometry units"

    def summary(self) -> str:
        """One line for /diagnostics: the scale and its uncertainty, or 'scale unknown yet (...)'."""
        if not self.known:
            return f"scale unknown yet ({self.reason})"
        return (f"{self.scale:.4g} m per odometry unit +- {100 * self.relative_uncertainty:.2g} % "
                f"({self.n_pairs} pairs over {self.n_frames} frames, {self.n_rejected} rejected)")


@dataclass
class _Frame:
    fid: int
    stamp: float
    c_vis: np.ndarray      # camera centre, visual odometry frame (units)
    R_vis: np.ndarray      # camera rotation, visual odometry frame
    c_odo: np.ndarray      # camera centre from robot odometry (metres)
    R_odo: np.ndarray
    p_base: np.ndarray     # base centre from robot odometry (metres)
    depth: Optional[float]


@dataclass
class _Pair:
    t_old: float
    t_new: float
    fid_old: int
    fid_new: int
    log_ratio: float
    baseline: float        # base chord, metres


def _rigid(T: np.ndarray, name: str) -> np.ndarray:
    T = np.asarray(T, np.float64)
    if T.shape == (3, 4):
        T = np.vstack([T, [0.0, 0.0, 0.0, 1.0]])
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 (or 3x4) pose, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} has non-finite entries")
    det = np.linalg.det(T[:3, :3])
    if not det > 0:
        raise ValueError(f"{name} has a non-positive rotation determinant ({det:.3g})")
    out = T.copy()
    out[:3, :3] /= np.cbrt(det)  # a Sim(3) pose is accepted; only its rotation and centre are used
    return out


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def fuse_scale_estimates(estimates: Sequence[Optional["ScaleEstimate"]], labels: Sequence[str]) -> ScaleEstimate:
    """One metric scale from independent estimates of the same metres-per-odometry-unit (e.g. a rig's and the
    wheel odometry's): the inverse-variance weighted mean in log scale of the KNOWN ones (relative uncertainty
    ``1 / sqrt(sum w)``, ``w = 1 / rel^2``); one known estimate is used alone; none known: unknown, with each
    source's reason. ``labels`` name the sources in the reason (e.g. ``("rig", "odometry")``)."""
    known = [(e, name) for e, name in zip(estimates, labels) if e is not None and e.known]
    if not known:
        reasons = "; ".join(f"{name}: {e.reason if e is not None else 'no estimate'}"
                            for e, name in zip(estimates, labels))
        return ScaleEstimate(reason=reasons)
    if len(known) == 1:
        return known[0][0]
    w = np.array([1.0 / max(e.relative_uncertainty, 1e-9) ** 2 for e, _ in known])
    log_s = float(np.sum(w * np.log([e.scale for e, _ in known])) / np.sum(w))
    rel = float(1.0 / np.sqrt(np.sum(w)))
    scale = float(np.exp(log_s))
    parts = ", ".join(f"{name} {e.scale:.4g} +- {100 * e.relative_uncertainty:.2g} %" for e, name in known)
    return ScaleEstimate(state=KNOWN, scale=scale, uncertainty=scale * rel, relative_uncertainty=rel,
                         provisional_scale=scale, n_pairs=sum(e.n_pairs for e, _ in known),
                         n_frames=max(e.n_frames for e, _ in known), frame_used=any(e.frame_used for e, _ in known),
                         reason=f"inverse-variance fusion of {parts}")


class OdometryScaleEstimator:
    """Robust, sliding-horizon estimate of metres per visual odometry unit from robot odometry.

    ``T_base_cam``: static base -> camera (optical) transform in metres (identity when the visual
    pose is already the base's, ``base_frame`` empty). See the module docstring for the method.
    """

    def __init__(self, T_base_cam: Optional[np.ndarray] = None, config: Optional[ScaleEstimatorConfig] = None):
        self.config = config if config is not None else ScaleEstimatorConfig()
        self.T_base_cam = _rigid(np.eye(4) if T_base_cam is None else T_base_cam, "T_base_cam")
        self.resets = 0
        self.last_reset_reason: Optional[str] = None
        self._frames: List[_Frame] = []
        self._pairs: List[_Pair] = []
        self._direction_rejected = 0
        self._next_fid = 0
        self._last_stamp: Optional[float] = None
        self._estimate = ScaleEstimate()

    @property
    def estimate(self) -> ScaleEstimate:
        return self._estimate

    @property
    def n_frames_in_horizon(self) -> int:
        return len(self._frames)

    def reset(self, reason: str = "reset") -> None:
        """Forget all frames and pairs (a new visual odometry frame or scale)."""
        self._frames.clear()
        self._pairs.clear()
        self._direction_rejected = 0
        self._last_stamp = None
        self.resets += 1
        self.last_reset_reason = reason
        self._estimate = ScaleEstimate(reason=f"{reason}; no pairs yet")

    def add(self, stamp: float, T_vis_cam: np.ndarray, T_odomwheel_base: np.ndarray,
            median_depth: Optional[float] = None, reinitialised: bool = False) -> ScaleEstimate:
        """Add one processed frame and return the updated estimate.

        Args:
            stamp: image stamp, seconds.
            T_vis_cam: camera pose in the visual odometry frame (odometry units), camera-to-odom.
            T_odomwheel_base: base pose in the robot odometry frame at the same stamp (metres).
            median_depth: median scene depth of the frame in odometry units (optional; enables the
                visual baseline gate).
            reinitialised: the visual trajectory restarted (new frame/scale): reset first.
        """
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        T_vis = _rigid(T_vis_cam, "T_vis_cam")
        T_odo_base = _rigid(T_odomwheel_base, "T_odomwheel_base")
        if median_depth is not None and not (np.isfinite(median_depth) and median_depth > 0):
            raise ValueError(f"median_depth must be a finite positive number or None, got {median_depth}")
        cfg = self.config
        note = None
        if reinitialised:
            self.reset("visual odometry re-initialised")
            note = "visual odometry re-initialised"
        elif self._last_stamp is not None and stamp < self._last_stamp:
            self.reset(f"time jumped back by {self._last_stamp - stamp:.3g} s")
            note = self.last_reset_reason
        elif self._last_stamp is not None and stamp - self._last_stamp > cfg.max_gap_s:
            self._frames.clear()
            note = f"gap of {stamp - self._last_stamp:.3g} s: frame history dropped"
        self._last_stamp = stamp

        T_odo_cam = T_odo_base @ self.T_base_cam
        frame = _Frame(self._next_fid, stamp, T_vis[:3, 3].copy(), T_vis[:3, :3].copy(), T_odo_cam[:3, 3].copy(),
                       T_odo_cam[:3, :3].copy(), T_odo_base[:3, 3].copy(),
                       None if median_depth is None else float(median_depth))
        self._next_fid += 1
        cutoff = stamp - cfg.horizon_s
        self._frames = [f for f in self._frames if f.stamp >= cutoff]
        used = not self._frames or float(np.linalg.norm(frame.p_base - self._frames[-1].p_base)) >= cfg.min_step_m
        added = 0
        if used:
            added = self._pair_with_history(frame)
            self._frames.append(frame)
            self._expire_pairs()
        elif note is None:
            note = "base still or turning in place: frame skipped"
        self._estimate = replace(self._fit(added, note), frame_used=used)
        return self._estimate

    # -- internals ---------------------------------------------------------------------------
    def _pair_with_history(self, new: _Frame) -> int:
        cfg = self.config
        eligible = []
        for f in self._frames:
            base_chord = float(np.linalg.norm(new.p_base - f.p_base))
            if not cfg.min_baseline_m <= base_chord <= cfg.max_baseline_m:
                continue  # too short (incl. rotation in place) or too long
            d_vis = new.c_vis - f.c_vis
            vis_chord = float(np.linalg.norm(d_vis))
            depth = f.depth if f.depth is not None else new.depth
            if vis_chord <= 1e-12 or (depth is not None and vis_chord < cfg.min_visual_baseline_rel * depth):
                continue
            eligible.append((f, base_chord, vis_chord, d_vis))
        if len(eligible) > cfg.max_pairs_per_frame:
            idx = np.unique(np.round(np.linspace(0, len(eligible) - 1, cfg.max_pairs_per_frame)).astype(int))
            eligible = [eligible[i] for i in idx]
        added = 0
        for f, base_chord, vis_chord, d_vis in eligible:
            d_odo = new.c_odo - f.c_odo
            odo_chord = float(np.linalg.norm(d_odo))
            if odo_chord <= 1e-9:
                continue  # the lever arm cancelled the base motion: no camera baseline
            # displacement directions in camera i's frame on both sides (frame-orientation invariant)
            if _angle_deg(f.R_vis.T @ d_vis, f.R_odo.T @ d_odo) > cfg.max_direction_error_deg:
                self._direction_rejected += 1
                continue
            self._pairs.append(_Pair(f.stamp, new.stamp, f.fid, new.fid, float(np.log(odo_chord / vis_chord)),
                                     base_chord))
            added += 1
        return added

    def _expire_pairs(self) -> None:
        cfg = self.config
        if not self._pairs:
            return
        # the horizon ends at the newest pair, not at the newest frame: without motion (no new pairs)
        # nothing expires and the estimate is held
        cutoff = self._pairs[-1].t_new - cfg.horizon_s
        self._pairs = [p for p in self._pairs if p.t_old >= cutoff]
        if len(self._pairs) > cfg.max_pairs:
            self._pairs = self._pairs[-cfg.max_pairs:]

    @staticmethod
    def _jackknife_se(x: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, n_frames: int, sd: float) -> float:
        """Delete-one-frame jackknife standard error of the weighted mean of ``x`` (pair k joins frames
        ``a[k]`` and ``b[k]``): pairs sharing a frame share its pose error, so they are not independent."""
        if n_frames < 3:
            return sd
        sw = np.sum(w)
        swx = np.sum(w * x)
        fw = np.zeros(n_frames)
        fwx = np.zeros(n_frames)
        np.add.at(fw, a, w)
        np.add.at(fw, b, w)
        np.add.at(fwx, a, w * x)
        np.add.at(fwx, b, w * x)
        keep = sw - fw > 0
        if keep.sum() < 2:
            return sd
        theta = (swx - fwx[keep]) / (sw - fw[keep])
        n = int(keep.sum())
        return float(np.sqrt((n - 1) / n * np.sum((theta - theta.mean()) ** 2)))

    def _fit(self, added: int, note: Optional[str]) -> ScaleEstimate:
        cfg = self.config
        prefix = f"{note}; " if note else ""
        if not self._pairs:
            if self._direction_rejected:
                why = (f"{self._direction_rejected} pairs refused: visual and odometry motion directions differ by "
                       f"> {cfg.max_direction_error_deg:g} deg (check T_base_cam / the camera frame)")
            else:
                why = f"no pair with >= {cfg.min_baseline_m:g} m baseline yet"
            return ScaleEstimate(pairs_added=added, n_direction_rejected=self._direction_rejected, reason=prefix + why)
        x = np.array([p.log_ratio for p in self._pairs])
        b = np.array([p.baseline for p in self._pairs])
        w = b ** 2
        med = weighted_median(x, w)
        # heteroscedastic residuals: a log-ratio's error ~ position noise / baseline, so residuals
        # are standardised by the baseline before the MAD (else long, precise pairs set the MAD and
        # every short pair looks like an outlier)
        b_ref = float(np.median(b))
        z = (x - med) * (b / b_ref)
        sigma = max(1.4826 * float(np.median(np.abs(z))), cfg.min_sigma)
        inl = np.abs(z) <= cfg.outlier_k * sigma
        xi, wi = x[inl], w[inl]
        mean = float(np.sum(wi * xi) / np.sum(wi))
        sd = float(np.sqrt(np.sum(wi * (xi - mean) ** 2) / np.sum(wi)))
        fo = np.array([p.fid_old for p in self._pairs])[inl]
        fn = np.array([p.fid_new for p in self._pairs])[inl]
        frames, inv = np.unique(np.concatenate([fo, fn]), return_inverse=True)
        rel = self._jackknife_se(xi, wi, inv[:len(fo)], inv[len(fo):], len(frames), sd)
        scale = float(np.exp(mean))
        est = ScaleEstimate(state=UNKNOWN, provisional_scale=scale, n_pairs=int(inl.sum()),
                            n_rejected=int((~inl).sum()), n_direction_rejected=self._direction_rejected,
                            n_frames=int(len(frames)), pairs_added=added)
        if est.n_pairs < cfg.min_pairs or est.n_frames < cfg.min_frames:
            return replace(est, reason=prefix + f"{est.n_pairs} of {cfg.min_pairs} pairs over {est.n_frames} of "
                                                f"{cfg.min_frames} frames")
        if rel > cfg.max_relative_uncertainty:
            return replace(est, reason=prefix + f"uncertainty {100 * rel:.2g} % > "
                                                f"{100 * cfg.max_relative_uncertainty:g} %")
        return replace(est, state=KNOWN, scale=scale, uncertainty=scale * rel, relative_uncertainty=rel,
                       reason=note or "ok")
