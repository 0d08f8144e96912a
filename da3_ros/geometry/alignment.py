"""Weighted point-set registration: closed-form Umeyama Sim(3)/SE(3) and robust IRLS (Huber).

Both functions estimate the transform ``T`` (4x4) that maps ``src`` onto ``dst``::

    dst_i ~= s R src_i + t          (Sim(3); s == 1 for SE(3))

minimising ``sum_i w_i ||dst_i - (s R src_i + t)||^2`` (Umeyama 1991, weighted form; the scale is
the one that maps the source spread onto the destination, i.e. the "forward" Umeyama scale).
Everything is computed in float64 and vectorised; cost is O(n) with a single 3x3 SVD per solve,
so a few thousand correspondences take well under a millisecond per IRLS iteration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["umeyama", "robust_align", "RobustAlignment", "weighted_median"]


def _check_inputs(src, dst, weights):
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"src must have shape (n, 3), got {src.shape}")
    if dst.shape != src.shape:
        raise ValueError(f"dst must have the same shape as src {src.shape}, got {dst.shape}")
    if weights is None:
        w = np.ones(src.shape[0])
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != src.shape[0]:
            raise ValueError(f"weights must have {src.shape[0]} entries, got {w.shape[0]}")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and non-negative")
    finite = np.isfinite(src).all(axis=1) & np.isfinite(dst).all(axis=1)
    w = np.where(finite, w, 0.0)
    if np.count_nonzero(w) < 3:
        raise ValueError(
            f"need at least 3 finite correspondences with positive weight, got {np.count_nonzero(w)}"
        )
    src = np.where(finite[:, None], src, 0.0)
    dst = np.where(finite[:, None], dst, 0.0)
    return src, dst, w


def _umeyama_core(src, dst, w, with_scale):
    wsum = w.sum()
    mu_s = (w @ src) / wsum
    mu_d = (w @ dst) / wsum
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs / wsum  # 3x3, sum w (d)(s)^T
    U, D, Vt = np.linalg.svd(cov)
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2] = -1.0
    R = (U * S) @ Vt
    if with_scale:
        var_s = float(w @ (xs * xs).sum(axis=1)) / wsum
        if var_s <= 1e-300:
            raise ValueError("source points are all identical: scale is undefined")
        s = float(D @ S) / var_s
        if s <= 0:
            raise ValueError(f"degenerate configuration: estimated scale {s:.3g} <= 0")
    else:
        s = 1.0
    t = mu_d - s * (R @ mu_s)
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = t
    return T, s, D


def umeyama(
    src: np.ndarray,
    dst: np.ndarray,
    weights: Optional[np.ndarray] = None,
    with_scale: bool = True,
) -> np.ndarray:
    """Closed-form weighted least-squares transform mapping ``src`` onto ``dst``.

    Args:
        src, dst: (n, 3) corresponding points, n >= 3 (non-collinear for a unique rotation).
        weights: (n,) non-negative weights (default all ones). Non-finite points get weight 0.
        with_scale: True for Sim(3), False for SE(3) (scale fixed to 1).

    Returns:
        4x4 matrix ``[[s R, t], [0, 1]]``.
    """
    src, dst, w = _check_inputs(src, dst, weights)
    T, _, _ = _umeyama_core(src, dst, w, with_scale)
    return T


@dataclass
class RobustAlignment:
    """Result of ``robust_align``.

    ``residuals`` are per-correspondence distances after the final fit, divided by
    ``residual_scale`` when one was given (so they are relative, e.g. to depth).
    ``inlier_ratio`` is the prior-weight-weighted fraction of correspondences whose residual is
    at most ``inlier_threshold``; ``median_residual`` is the prior-weighted median residual.
    """

    transform: np.ndarray
    scale: float
    residuals: np.ndarray
    weights: np.ndarray
    inlier_mask: np.ndarray
    inlier_ratio: float
    median_residual: float
    iterations: int
    converged: bool

    @property
    def rotation(self) -> np.ndarray:
        return self.transform[:3, :3] / self.scale

    @property
    def translation(self) -> np.ndarray:
        return self.transform[:3, 3].copy()


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The lower weighted median: the smallest value whose cumulative weight (values sorted ascending)
    reaches half the total weight.

    A value holding exactly half the weight wins (no averaging with the next one), so with equal weights
    and an even count this is the lower of the two middle values (as ``torch.median``). NaN when the
    total weight is not positive. ``values`` and ``weights`` are 1-D of the same length, weights >= 0.
    """
    values = np.asarray(values)
    weights = np.asarray(weights)
    if values.size == 0:
        return float("nan")
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    if not cw[-1] > 0:
        return float("nan")
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def robust_align(
    src: np.ndarray,
    dst: np.ndarray,
    weights: Optional[np.ndarray] = None,
    with_scale: bool = True,
    huber_delta: float = 0.05,
    max_iterations: int = 8,
    residual_scale: Optional[np.ndarray] = None,
    inlier_threshold: Optional[float] = None,
    tolerance: float = 1e-7,
) -> RobustAlignment:
    """Iteratively re-weighted least squares Sim(3)/SE(3) with Huber weights.

    Each iteration solves the weighted Umeyama problem with weights ``w_i * huber(r_i)`` where
    ``r_i = ||dst_i - T src_i|| / residual_scale_i`` and ``huber(r) = min(1, delta / r)``.

    Args:
        src: (n, 3) points, as in ``umeyama``.
        dst: (n, 3) corresponding points, as in ``umeyama``.
        weights: (n,) non-negative weights, as in ``umeyama``.
        with_scale: True for Sim(3), False for SE(3), as in ``umeyama``.
        huber_delta: Huber threshold in residual units (relative when ``residual_scale`` is set).
        max_iterations: IRLS iterations after the initial unweighted-by-residual solve.
        residual_scale: optional (n,) positive divisor per correspondence (e.g. the point's depth
            in the destination camera), which makes residuals and ``huber_delta`` relative.
        inlier_threshold: residual below which a correspondence counts as an inlier
            (default ``2 * huber_delta``).
        tolerance: stop when the transform changes by less than this (max abs entry, relative
            to the translation magnitude + 1).
    """
    src, dst, w0 = _check_inputs(src, dst, weights)
    if huber_delta <= 0:
        raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
    if residual_scale is not None:
        rs = np.asarray(residual_scale, dtype=np.float64).reshape(-1)
        if rs.shape[0] != src.shape[0]:
            raise ValueError(f"residual_scale must have {src.shape[0]} entries, got {rs.shape[0]}")
        bad = ~(np.isfinite(rs) & (rs > 0))
        if np.any(bad):
            w0 = np.where(bad, 0.0, w0)
            rs = np.where(bad, 1.0, rs)
        inv_rs = 1.0 / rs
    else:
        inv_rs = None
    thr = 2.0 * huber_delta if inlier_threshold is None else float(inlier_threshold)

    def residuals_of(T):
        d = dst - (src @ T[:3, :3].T + T[:3, 3])
        r = np.sqrt((d * d).sum(axis=1))
        return r * inv_rs if inv_rs is not None else r

    T, s, _ = _umeyama_core(src, dst, w0, with_scale)
    r = residuals_of(T)
    w = w0
    converged = False
    it = 0
    for it in range(1, max_iterations + 1):
        hub = np.where(r <= huber_delta, 1.0, huber_delta / np.maximum(r, 1e-300))
        w = w0 * hub
        if np.count_nonzero(w) < 3:
            break
        T_new, s, _ = _umeyama_core(src, dst, w, with_scale)
        change = np.max(np.abs(T_new - T)) / (1.0 + np.linalg.norm(T[:3, 3]))
        T = T_new
        r = residuals_of(T)
        if change < tolerance:
            converged = True
            break
    inliers = (r <= thr) & (w0 > 0)
    w0sum = w0.sum()
    return RobustAlignment(
        transform=T,
        scale=float(s),
        residuals=r,
        weights=w,
        inlier_mask=inliers,
        inlier_ratio=float(w0[inliers].sum() / w0sum),
        median_residual=weighted_median(r, w0),
        iterations=it,
        converged=converged,
    )
