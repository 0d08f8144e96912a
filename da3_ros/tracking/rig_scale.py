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

Consistency: the predicted inter-camera rotations are compared with the known ones (they do not
depend on the scale); beyond ``max_rotation_residual_deg`` (default 5 deg) the estimate is
``inconsistent`` and not trusted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from da3_ros.geometry.alignment import umeyama
from da3_ros.geometry.transforms import invert_transform, rotation_angle_deg

__all__ = ["RigScaleConfig", "RigScaleEstimate", "estimate_rig_scale", "METHODS"]

METHODS = ("auto", "baselines", "umeyama")


@dataclass
class RigScaleConfig:
    method: str = "auto"
    centre_noise_rel: float = 0.001     # predicted camera-centre sigma per axis / scene depth
    max_rel_uncertainty: float = 0.05   # above this the baseline is "too short to trust"
    max_rotation_residual_deg: float = 5.0  # predicted vs known inter-camera rotation: "inconsistent" above

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.centre_noise_rel > 0:
            raise ValueError(f"centre_noise_rel must be > 0, got {self.centre_noise_rel}")
        if not self.max_rel_uncertainty > 0:
            raise ValueError(f"max_rel_uncertainty must be > 0, got {self.max_rel_uncertainty}")
        if not self.max_rotation_residual_deg > 0:
            raise ValueError(f"max_rotation_residual_deg must be > 0, got {self.max_rotation_residual_deg}")


@dataclass
class RigScaleEstimate:
    """``scale`` in metres per window unit; ``state`` (first that applies): ``degenerate`` (predicted
    centres coincide, no scale), ``inconsistent`` (``rotation_residual_deg`` above its limit: the window's
    rig prediction or the extrinsics are wrong), ``baseline_too_short`` (``relative_uncertainty`` above its
    limit) or ``ok``. Only ``ok`` is ``trusted``.

    ``relative_uncertainty`` is a 1-sigma fraction of ``scale``; ``baseline_over_depth`` = shortest known
    baseline / scene depth (metres / metres, using this estimate's scale); ``rotation_residual_deg`` =
    worst angle between a predicted and the known inter-camera rotation (a consistency check, not used
    for the scale); ``residual_rel`` = rms relative misfit of the measurements.
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
                f"rotation residual {self.rotation_residual_deg:.2g} deg"
                + (f", recent windows scatter {100 * self.rel_sigma_windows:.2g} %"
                   if np.isfinite(self.rel_sigma_windows) else ""))


def _as_poses(T_window_cam, T_base_cam):
    P = np.asarray(T_window_cam, np.float64)
    B = np.asarray(T_base_cam, np.float64)
    if B.ndim != 3 or B.shape[1:] != (4, 4):
        raise ValueError(f"T_base_cam must have shape (C, 4, 4), got {B.shape}")
    if P.ndim == 3:
        P = P[None]
    if P.ndim != 4 or P.shape[1:] != B.shape:
        raise ValueError(f"T_window_cam must have shape (K, C, 4, 4) or (C, 4, 4) with C = {B.shape[0]}, "
                         f"got {np.asarray(T_window_cam).shape}")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(B))):
        raise ValueError("poses must be finite")
    if B.shape[0] < 2:
        raise ValueError(f"need at least 2 rig cameras, got {B.shape[0]}")
    return P, B


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


def _rotation_residual_deg(P: np.ndarray, B: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> float:
    """Worst angle between a predicted cam_a -> cam_b rotation (any snapshot) and the known one."""
    rot_res = 0.0
    for a, b in zip(ia, ib):
        R_known = (invert_transform(B[a]) @ B[b])[:3, :3]
        for k in range(P.shape[0]):
            R_pred = (np.linalg.inv(P[k, a]) @ P[k, b])[:3, :3]
            rot_res = max(rot_res, rotation_angle_deg(R_known.T @ R_pred))
    return rot_res


def _fit_baselines(pred: np.ndarray, L: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> _ScaleFit:
    """``baselines``: every predicted pair distance of every snapshot against the known one."""
    K = pred.shape[0]
    l_pred = np.linalg.norm(pred[:, ia] - pred[:, ib], axis=2).reshape(-1)  # (K * pairs,)
    Lk = np.tile(L, K)
    u = float(Lk @ l_pred / (Lk @ Lk))
    if not u > 1e-12:
        return _ScaleFit(l_pred.size)
    return _ScaleFit(n_meas=l_pred.size, u=u, ratios=l_pred / Lk, weights=Lk ** 2,  # per-measurement u
                     V_known=float(Lk @ Lk) / 2.0,  # two centres: spread = L^2 / 2
                     misfit=(l_pred - u * Lk) / (u * Lk))


def _fit_umeyama(pred: np.ndarray, known: np.ndarray) -> _ScaleFit:
    """``umeyama``: one Sim(3) per snapshot from the known centres onto the predicted ones; a shared ``u``."""
    K, C = pred.shape[:2]
    us, Vs = [], []
    centred = known - known.mean(axis=0)
    V = float((centred ** 2).sum())
    if np.linalg.matrix_rank(centred, tol=1e-9) < 2:
        raise ValueError("method 'umeyama' needs rig cameras that are not collinear")
    misfit_k = []
    for k in range(K):
        try:
            T = umeyama(known, pred[k], with_scale=True)
        except ValueError:
            return _ScaleFit(K)
        s_k = float(np.cbrt(np.linalg.det(T[:3, :3])))
        us.append(s_k)
        Vs.append(V)
        d = pred[k] - (known @ T[:3, :3].T + T[:3, 3])
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


def estimate_rig_scale(T_window_cam: np.ndarray, T_base_cam: np.ndarray, scene_depth: float,
                       config: Optional[RigScaleConfig] = None) -> RigScaleEstimate:
    """Metric scale (metres per window unit) of a window from its predicted rig camera poses.

    Args:
        T_window_cam: (K, C, 4, 4) (or (C, 4, 4) for one snapshot) predicted camera-to-window poses,
            window units, camera order as ``T_base_cam``.
        T_base_cam: (C, 4, 4) known camera-to-base extrinsics, metres.
        scene_depth: typical (median) predicted depth of the window, window units (> 0).
        config: method and gates (default ``RigScaleConfig()``).
    """
    cfg = config or RigScaleConfig()
    P, B = _as_poses(T_window_cam, T_base_cam)
    if not (np.isfinite(scene_depth) and scene_depth > 0):
        raise ValueError(f"scene_depth must be a finite number > 0 (window units), got {scene_depth!r}")
    K, C = P.shape[:2]
    known = B[:, :3, 3]
    pred = P[:, :, :3, 3]
    ia, ib = np.triu_indices(C, 1)
    L = np.linalg.norm(known[ia] - known[ib], axis=1)
    if np.min(L) <= 1e-9:
        raise ValueError("two rig cameras share one position in T_base_cam: their baseline is zero")
    method = cfg.method if cfg.method != "auto" else ("umeyama" if C >= 3 else "baselines")
    if method == "umeyama" and C < 3:
        raise ValueError("method 'umeyama' needs at least 3 cameras")
    rot_res = _rotation_residual_deg(P, B, ia, ib)
    fit = _fit_baselines(pred, L, ia, ib) if method == "baselines" else _fit_umeyama(pred, known)
    if fit.degenerate:
        nan = float("nan")
        return RigScaleEstimate(nan, nan, nan, nan, "degenerate", method, K, fit.n_meas, nan, rot_res, nan)
    u = fit.u
    sigma = cfg.centre_noise_rel * float(scene_depth)  # window units
    rel_model = sigma / (u * np.sqrt(fit.V_known))
    rel_emp = _empirical_rel_sigma(fit)
    rel = max(rel_model, rel_emp)
    scale = 1.0 / u
    if rot_res > cfg.max_rotation_residual_deg:
        state = "inconsistent"
    else:
        state = "ok" if rel <= cfg.max_rel_uncertainty else "baseline_too_short"
    return RigScaleEstimate(
        scale=scale, relative_uncertainty=float(rel), rel_sigma_model=float(rel_model),
        rel_sigma_empirical=rel_emp,
        state=state, method=method, snapshots=K, measurements=int(fit.n_meas),
        baseline_over_depth=float(np.min(L) / (scale * float(scene_depth))), rotation_residual_deg=float(rot_res),
        residual_rel=float(np.sqrt(np.mean(fit.misfit ** 2))))
