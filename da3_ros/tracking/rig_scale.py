"""Metric scale of a window from a rig's known extrinsics (ROS-free).

Input: for each of ``K`` snapshots (rig poses, e.g. keyframes of one window) the window's predicted
camera poses of the rig's ``C`` cameras, ``T_window_cam`` (K, C, 4, 4) camera-to-window in WINDOW
units, and the known ``T_base_cam`` (C, 4, 4) in metres (from TF). The camera centres of one snapshot
are a rigid copy of the known centres, scaled by the window's scale ``u`` (window units per metre) and
moved by an unknown pose; the output is ``scale = 1 / u`` in metres per window unit, so that
``p_metric = scale * p_window``.

Methods (``method="auto"``: ``umeyama`` when C >= 3, else ``baselines``):

- ``baselines`` (C >= 2, frame-invariant): per snapshot and camera pair, predicted distance
  ``l = |c_a - c_b|`` (window units) vs known ``L`` (metres); least squares in the noisy quantity,
  ``u = sum L l / sum L^2`` over all pairs of all snapshots.
- ``umeyama`` (C >= 3, cameras not collinear): per snapshot the Sim(3) from the known centres (base,
  metres) onto the predicted ones (``geometry.alignment.umeyama``); the snapshots share ``u``:
  ``u = sum_k u_k V_k / sum_k V_k`` with ``V_k`` the spread of the known centres (the joint least-squares
  scale given each snapshot's rotation).

Uncertainty: the predicted camera centres are modelled with isotropic noise ``sigma = centre_noise_rel *
scene_depth`` per axis (window units; ``scene_depth`` = the window's median predicted depth). Its
first-order effect on the scale is ``rel_sigma_model = sigma / sqrt(sum_k V_k)`` in window units (for
two cameras ``V = l^2 / 2``, i.e. ``sqrt(2) sigma / l`` per snapshot). With >= 3 measurements (pairs
or snapshots) the scatter of the per-measurement scales gives ``rel_sigma_empirical`` too; the
reported ``relative_uncertainty`` is the larger of the two.

"Baseline too short to trust": ``relative_uncertainty > max_rel_uncertainty`` (default 0.05). With the
default ``centre_noise_rel = 0.001`` (the camera centre within 0.1 % of the scene depth, about 0.2 px of
disparity for the 70 deg, 320 px synthetic camera; the window oracle's default of 0.002 is for
views far apart) one snapshot of a stereo pair is trusted when ``baseline / depth >= sqrt(2) * 0.001 /
0.05 = 2.8 %``, i.e. a 0.12 m pair up to ~4 m of scene depth, a 5 cm pair up to ~1.8 m (or deeper
with more snapshots: the threshold falls with ``1 / sqrt(K)``), and a 1 cm pair not at room depths.

Consistency (scale-free): per snapshot and camera pair the predicted cam_a -> cam_b pose is compared with the
known one: its rotation (beyond ``max_rotation_residual_deg``, default 5 deg) and the DIRECTION of its translation,
the baseline seen from camera a, averaged over the window's snapshots (beyond ``max_translation_residual_deg``,
default 10 deg, checked on windows whose length passes the uncertainty gate); either makes the estimate
``inconsistent`` (not trusted: swapped cameras, a mount on the wrong axis, a wrong prediction). Why 10 deg: the
centre noise is isotropic, so the averaged baseline's direction scatters by about its relative length error, and
a stereo window the scale gate trusts has ``relative_uncertainty <= 0.05``, i.e. ~0.05 rad = 2.9 deg 1-sigma in
direction at the worst: 10 deg is >= 3.4 sigma there (much more on a well-conditioned window; for C >= 3 one
pair's direction is up to sqrt(pairs) noisier than the window's scale), while swapped cameras are 180 deg off, a
mount on the wrong axis 90 deg, and a camera mounted 0.2 baselines off across the baseline 11 deg.

Cameras at different instants (unsynchronised rigs, issue 19): the known geometry of snapshot k may be given per
snapshot, ``T_base_cam`` (K, C, 4, 4): the mounts moved by the base motion between the cameras' stamps,
``inv(T_odometry_base(t_0)) @ T_odometry_base(t_c) @ T_base_cam(c)`` (``motion_compensated_mounts``), so a
pair out of sync by ``dt`` on a robot moving at ``v`` is compared with the baseline it really had (the true one
plus ``v dt``). Without odometry the motion is not known: ``unsynchronised_rel_error`` bounds what the stamp
offsets can do to the scale from the window's own predicted motion, and ``estimate_rig_scale(...,
unsynchronised_rel=...)`` adds it to the uncertainty (in quadrature); when that share takes the uncertainty above
``max_rel_uncertainty`` (or is infinite: the motion is unknown) the estimate is ``unsynchronised``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from da3_ros.geometry.alignment import umeyama
from da3_ros.geometry.transforms import invert_transform, rotation_angle_deg

__all__ = ["RigScaleConfig", "RigScaleEstimate", "estimate_rig_scale", "motion_compensated_mounts",
           "unsynchronised_rel_error", "METHODS"]

METHODS = ("auto", "baselines", "umeyama")


@dataclass
class RigScaleConfig:
    method: str = "auto"
    centre_noise_rel: float = 0.001     # predicted camera-centre sigma per axis / scene depth
    max_rel_uncertainty: float = 0.05   # above this the baseline is "too short to trust"
    max_rotation_residual_deg: float = 5.0  # predicted vs known inter-camera rotation: "inconsistent" above
    max_translation_residual_deg: float = 10.0  # predicted vs known baseline direction: "inconsistent" above

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.centre_noise_rel > 0:
            raise ValueError(f"centre_noise_rel must be > 0, got {self.centre_noise_rel}")
        if not self.max_rel_uncertainty > 0:
            raise ValueError(f"max_rel_uncertainty must be > 0, got {self.max_rel_uncertainty}")
        if not self.max_rotation_residual_deg > 0:
            raise ValueError(f"max_rotation_residual_deg must be > 0, got {self.max_rotation_residual_deg}")
        if not 0 < self.max_translation_residual_deg <= 180:
            raise ValueError("max_translation_residual_deg must be in (0, 180], got "
                             f"{self.max_translation_residual_deg}")


@dataclass
class RigScaleEstimate:
    """``scale`` in metres per window unit; ``state`` (first that applies): ``degenerate`` (predicted
    centres coincide, no scale), ``inconsistent`` (``rotation_residual_deg`` above its limit: the window's rig
    prediction or the extrinsics are wrong), ``baseline_too_short`` (``relative_uncertainty`` above its limit
    without the stamp offsets' share), ``unsynchronised`` (the cameras' stamps differ, the motion between them
    is not compensated, and their share ``rel_sigma_unsynchronised`` takes ``relative_uncertainty`` above its
    limit or is unknown), ``inconsistent`` (``translation_residual_deg`` above its limit) or ``ok``. Only ``ok`` is
    ``trusted``.

    ``relative_uncertainty`` is a 1-sigma fraction of ``scale``; ``baseline_over_depth`` = shortest known
    baseline / scene depth (metres / metres, using this estimate's scale); ``rotation_residual_deg`` /
    ``translation_residual_deg`` = worst angle between a predicted and the known inter-camera rotation /
    baseline direction (consistency checks, not used for the scale); ``residual_rel`` = rms relative misfit
    of the measurements; ``rel_sigma_unsynchronised``: what uncompensated stamp offsets may do to the scale
    (part of ``relative_uncertainty``; 0 when synchronised or compensated).
    """

    scale: float
    relative_uncertainty: float
    rel_sigma_model: float
    rel_sigma_empirical: float
    state: str
    method: str
    snapshots: int
    measurements: int
    baseline_over_depth: float
    rotation_residual_deg: float
    residual_rel: float
    #: spread of recent windows' scale measurements (1-sigma fraction; NaN: not known), set by the rig processor
    rel_sigma_windows: float = float("nan")
    translation_residual_deg: float = 0.0
    rel_sigma_unsynchronised: float = 0.0

    @property
    def trusted(self) -> bool:
        return self.state == "ok"

    @property
    def uncertainty(self) -> float:
        """1-sigma uncertainty of ``scale`` in metres per window unit."""
        return self.scale * self.relative_uncertainty

    def summary(self) -> str:
        """One line for /diagnostics."""
        return (f"rig scale {self.scale:.4g} m/unit +- {100 * self.relative_uncertainty:.2g} % ({self.method}, "
                f"{self.snapshots} snapshots, {self.measurements} measurements): {self.state}; "
                f"baseline/depth {self.baseline_over_depth:.3g}, "
                f"rotation residual {self.rotation_residual_deg:.2g} deg, "
                f"baseline direction residual {self.translation_residual_deg:.2g} deg"
                + (f", unsynchronised stamps {100 * self.rel_sigma_unsynchronised:.2g} %"
                   if self.rel_sigma_unsynchronised else "")
                + (f", recent windows scatter {100 * self.rel_sigma_windows:.2g} %"
                   if np.isfinite(self.rel_sigma_windows) else ""))


def _as_poses(T_window_cam, T_base_cam):
    """(P (K, C, 4, 4), B (K, C, 4, 4)): predicted poses and the known geometry of every snapshot."""
    P = np.asarray(T_window_cam, np.float64)
    B = np.asarray(T_base_cam, np.float64)
    if B.ndim not in (3, 4) or B.shape[-2:] != (4, 4):
        raise ValueError(f"T_base_cam must have shape (C, 4, 4) or (K, C, 4, 4), got {B.shape}")
    if P.ndim == 3:
        P = P[None]
    C = B.shape[-3]
    if P.ndim != 4 or P.shape[1:] != (C, 4, 4):
        raise ValueError(f"T_window_cam must have shape (K, C, 4, 4) or (C, 4, 4) with C = {C}, "
                         f"got {np.asarray(T_window_cam).shape}")
    if B.ndim == 4 and B.shape[0] != P.shape[0]:
        raise ValueError(f"T_base_cam per snapshot has {B.shape[0]} snapshots, T_window_cam {P.shape[0]}")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(B))):
        raise ValueError("poses must be finite")
    if C < 2:
        raise ValueError(f"need at least 2 rig cameras, got {C}")
    return P, np.broadcast_to(B, P.shape) if B.ndim == 3 else B


@dataclass
class _ScaleFit:
    """One method's fit of ``u`` (window units per metre) over ``n_meas`` measurements: the per-measurement
    scales ``ratios`` with their ``weights`` (~ 1 / variance), the known centres' total spread ``V_known``
    and the relative ``misfit`` of every measurement. ``ratios`` None: degenerate (no scale)."""

    n_meas: int
    u: float = float("nan")
    ratios: Optional[np.ndarray] = None
    weights: Optional[np.ndarray] = None
    V_known: float = float("nan")
    misfit: Optional[np.ndarray] = None

    @property
    def degenerate(self) -> bool:
        return self.ratios is None


def _angle_deg(x: np.ndarray, y: np.ndarray) -> float:
    """Angle between two 3-vectors (180 deg when either is zero: no direction to agree with)."""
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx <= 1e-300 or ny <= 1e-300:
        return 180.0
    return float(np.degrees(np.arccos(np.clip(float(x @ y) / (nx * ny), -1.0, 1.0))))


def _consistency_residuals_deg(P: np.ndarray, B: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> tuple:
    """(rotation, baseline direction) residuals in degrees: the worst angle between a predicted cam_a -> cam_b
    rotation (any snapshot) and the known one; the worst angle (over pairs) between the pair's predicted and known
    baseline directions seen from camera a, each averaged over the snapshots (scale-free; the average, as the
    scale's own uncertainty, shrinks the centre noise by sqrt(K) while a wrong mount stays)."""
    rot_res = trans_res = 0.0
    for a, b in zip(ia, ib):
        pred_dir, known_dir = np.zeros(3), np.zeros(3)
        for k in range(P.shape[0]):
            T_known = invert_transform(B[k, a]) @ B[k, b]
            T_pred = np.linalg.inv(P[k, a]) @ P[k, b]
            rot_res = max(rot_res, rotation_angle_deg(T_known[:3, :3].T @ T_pred[:3, :3]))
            n = float(np.linalg.norm(T_pred[:3, 3]))
            pred_dir += T_pred[:3, 3] / n if n > 1e-300 else 0.0
            known_dir += T_known[:3, 3] / np.linalg.norm(T_known[:3, 3])
        trans_res = max(trans_res, _angle_deg(pred_dir, known_dir))
    return rot_res, trans_res


def _fit_baselines(pred: np.ndarray, L: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> _ScaleFit:
    """``baselines``: every predicted pair distance of every snapshot against the known one (``L`` (K, pairs))."""
    l_pred = np.linalg.norm(pred[:, ia] - pred[:, ib], axis=2).reshape(-1)  # (K * pairs,)
    Lk = L.reshape(-1)
    u = float(Lk @ l_pred / (Lk @ Lk))
    if not u > 1e-12:
        return _ScaleFit(l_pred.size)
    return _ScaleFit(n_meas=l_pred.size, u=u, ratios=l_pred / Lk, weights=Lk ** 2,  # per-measurement u
                     V_known=float(Lk @ Lk) / 2.0,  # two centres: spread = L^2 / 2
                     misfit=(l_pred - u * Lk) / (u * Lk))


def _fit_umeyama(pred: np.ndarray, known: np.ndarray) -> _ScaleFit:
    """``umeyama``: one Sim(3) per snapshot from the known centres (``known`` (K, C, 3)) onto the predicted ones;
    a shared ``u``."""
    K, C = pred.shape[:2]
    us, Vs = [], []
    misfit_k = []
    for k in range(K):
        centred = known[k] - known[k].mean(axis=0)
        V = float((centred ** 2).sum())
        if np.linalg.matrix_rank(centred, tol=1e-9) < 2:
            raise ValueError("method 'umeyama' needs rig cameras that are not collinear")
        try:
            T = umeyama(known[k], pred[k], with_scale=True)
        except ValueError:
            return _ScaleFit(K)
        s_k = float(np.cbrt(np.linalg.det(T[:3, :3])))
        us.append(s_k)
        Vs.append(V)
        d = pred[k] - (known[k] @ T[:3, :3].T + T[:3, 3])
        misfit_k.append(np.linalg.norm(d, axis=1) / max(s_k * np.sqrt(V / C), 1e-300))
    us_a, Vs_a = np.asarray(us), np.asarray(Vs)
    u = float(us_a @ Vs_a / Vs_a.sum())
    if not u > 1e-12:
        return _ScaleFit(K)
    return _ScaleFit(n_meas=K, u=u, ratios=us_a, weights=Vs_a, V_known=float(Vs_a.sum()),
                     misfit=np.concatenate(misfit_k))


def _empirical_rel_sigma(fit: _ScaleFit) -> float:
    """The scatter of the per-measurement scales as a 1-sigma fraction of ``u`` (0 below 3 measurements)."""
    if fit.n_meas < 3:
        return 0.0
    # weighted mean of per-measurement scales with variances ~ 1 / weight:
    # var(u) = sum W (r - u)^2 / ((n - 1) sum W)
    var_u = float(fit.weights @ (fit.ratios - fit.u) ** 2) / ((fit.n_meas - 1) * float(fit.weights.sum()))
    return float(np.sqrt(var_u)) / fit.u


def motion_compensated_mounts(T_base_cam: np.ndarray, T_odometry_base: Sequence[Optional[np.ndarray]]
                              ) -> Optional[np.ndarray]:
    """(C, 4, 4) each camera's mount at the reference camera's (camera 0's) instant: ``inv(T_odometry_base[0]) @
    T_odometry_base[c] @ T_base_cam[c]``, the known geometry of cameras captured at different stamps
    (``T_odometry_base[c]``: the robot odometry at camera c's stamp). None when a pose is missing."""
    B = np.asarray(T_base_cam, np.float64)
    if any(T is None for T in T_odometry_base):
        return None
    if len(T_odometry_base) != B.shape[0]:
        raise ValueError(f"need one odometry pose per camera ({B.shape[0]}), got {len(T_odometry_base)}")
    T_base0_odometry = invert_transform(np.asarray(T_odometry_base[0], np.float64))
    return np.stack([B[0]] + [T_base0_odometry @ np.asarray(T, np.float64) @ M
                              for T, M in zip(T_odometry_base[1:], B[1:])])


def unsynchronised_rel_error(T_window_cam: np.ndarray, stamps_s: np.ndarray) -> float:
    """What the cameras' stamp offsets may do to a window's rig scale when the base motion between them is not
    known (no odometry): a relative scale error, 0 when every snapshot's cameras share one stamp.

    The base velocity comes from the window itself: the reference camera's (camera 0's) predicted centres of
    consecutive snapshots over their stamp difference (window units per second; a snapshot takes the velocity of
    its segment, the first the first segment's). Camera b of snapshot k, ``dt`` after camera a, is then displaced
    by ``d = v dt``: the predicted baseline ``l`` is the one-instant baseline ``l - d`` plus ``d``, a length error
    of ``| |l| - |l - d| | / min(|l|, |l - d|)`` (the larger of the two ways to relate it: ~``|d| / |l|`` along the
    baseline, ``|d|^2 / (2 |l|^2)`` across it); the largest over pairs and snapshots. Infinite when stamps differ
    but the velocity is unknown (one snapshot, or snapshots with one stamp).

    Args:
        T_window_cam: (K, C, 4, 4) predicted camera-to-window poses (window units).
        stamps_s: (K, C) each camera's stamp per snapshot (seconds).
    """
    P = np.asarray(T_window_cam, np.float64)
    t = np.asarray(stamps_s, np.float64)
    if P.ndim != 4 or t.shape != P.shape[:2]:
        raise ValueError(f"stamps_s must have shape {P.shape[:2]} (K snapshots, C cameras), got {t.shape}")
    offsets = t - t[:, :1]
    if not np.any(np.abs(offsets) > 0):
        return 0.0
    K, C = P.shape[:2]
    centres = P[:, :, :3, 3]
    dt = np.diff(t[:, 0])
    if K < 2 or np.any(dt <= 0):
        return float("inf")
    v_seg = np.diff(centres[:, 0], axis=0) / dt[:, None]          # (K - 1, 3)
    velocity = np.concatenate([v_seg[:1], v_seg])                 # snapshot k: the segment ending at k
    worst = 0.0
    ia, ib = np.triu_indices(C, 1)
    for k in range(K):
        for a, b in zip(ia, ib):
            d = velocity[k] * (offsets[k, b] - offsets[k, a])
            baseline = centres[k, b] - centres[k, a]              # = the baseline at one instant + d
            synchronous, measured = float(np.linalg.norm(baseline - d)), float(np.linalg.norm(baseline))
            if min(synchronous, measured) <= 1e-300:
                return float("inf")
            worst = max(worst, abs(measured - synchronous) / min(synchronous, measured))
    return worst


def _state(cfg: RigScaleConfig, rot_res: float, trans_res: float, unsync: float, rel_centres: float,
           rel: float) -> str:
    """The first that applies; the direction gate after the length gate: the 10 deg limit assumes a window whose
    centres are good to <= 5 % of the baseline (a too short one has no direction to check). ``rel_centres``: the
    uncertainty without the stamp offsets' share (``rel`` with it)."""
    if rot_res > cfg.max_rotation_residual_deg:
        return "inconsistent"
    if rel > cfg.max_rel_uncertainty or not np.isfinite(unsync):
        return "baseline_too_short" if rel_centres > cfg.max_rel_uncertainty else "unsynchronised"
    return "inconsistent" if trans_res > cfg.max_translation_residual_deg else "ok"


def estimate_rig_scale(T_window_cam: np.ndarray, T_base_cam: np.ndarray, scene_depth: float,
                       config: Optional[RigScaleConfig] = None, unsynchronised_rel: float = 0.0) -> RigScaleEstimate:
    """Metric scale (metres per window unit) of a window from its predicted rig camera poses.

    Args:
        T_window_cam: (K, C, 4, 4) (or (C, 4, 4) for one snapshot) predicted camera-to-window poses,
            window units, camera order as ``T_base_cam``.
        T_base_cam: (C, 4, 4) known camera-to-base extrinsics, metres; or (K, C, 4, 4) the known geometry of
            each snapshot (``motion_compensated_mounts``: cameras captured at different stamps).
        scene_depth: typical (median) predicted depth of the window, window units (> 0).
        config: method and gates (default ``RigScaleConfig()``).
        unsynchronised_rel: relative scale error the uncompensated stamp offsets may cause
            (``unsynchronised_rel_error``; 0: synchronised or compensated; inf: unknown).
    """
    cfg = config or RigScaleConfig()
    P, B = _as_poses(T_window_cam, T_base_cam)
    if not (np.isfinite(scene_depth) and scene_depth > 0):
        raise ValueError(f"scene_depth must be a finite number > 0 (window units), got {scene_depth!r}")
    if np.isnan(unsynchronised_rel) or unsynchronised_rel < 0:
        raise ValueError(f"unsynchronised_rel must be >= 0 (or inf), got {unsynchronised_rel!r}")
    K, C = P.shape[:2]
    known = B[:, :, :3, 3]                                        # (K, C, 3)
    pred = P[:, :, :3, 3]
    ia, ib = np.triu_indices(C, 1)
    L = np.linalg.norm(known[:, ia] - known[:, ib], axis=2)       # (K, pairs)
    if np.min(L) <= 1e-9:
        raise ValueError("two rig cameras share one position in T_base_cam: their baseline is zero")
    method = cfg.method if cfg.method != "auto" else ("umeyama" if C >= 3 else "baselines")
    if method == "umeyama" and C < 3:
        raise ValueError("method 'umeyama' needs at least 3 cameras")
    rot_res, trans_res = _consistency_residuals_deg(P, B, ia, ib)
    fit = _fit_baselines(pred, L, ia, ib) if method == "baselines" else _fit_umeyama(pred, known)
    if fit.degenerate:
        nan = float("nan")
        return RigScaleEstimate(nan, nan, nan, nan, "degenerate", method, K, fit.n_meas, nan, rot_res, nan,
                                translation_residual_deg=trans_res)
    u = fit.u
    sigma = cfg.centre_noise_rel * float(scene_depth)  # window units
    rel_model = sigma / (u * np.sqrt(fit.V_known))
    rel_emp = _empirical_rel_sigma(fit)
    rel_centres = max(rel_model, rel_emp)
    rel = float(np.hypot(rel_centres, unsynchronised_rel))
    scale = 1.0 / u
    return RigScaleEstimate(
        scale=scale, relative_uncertainty=rel, rel_sigma_model=float(rel_model),
        rel_sigma_empirical=rel_emp,
        state=_state(cfg, rot_res, trans_res, unsynchronised_rel, rel_centres, rel), method=method, snapshots=K,
        measurements=int(fit.n_meas),
        baseline_over_depth=float(np.min(L) / (scale * float(scene_depth))), rotation_residual_deg=float(rot_res),
        residual_rel=float(np.sqrt(np.mean(fit.misfit ** 2))), translation_residual_deg=float(trans_res),
        rel_sigma_unsynchronised=float(unsynchronised_rel))
