"""Evaluation helpers for trajectories and depth (used by tests, benchmarks and the demo).

- ``ate_sim3``: absolute trajectory error (RMSE of camera centres) after one global Sim(3) fit of
  the estimate onto the ground truth (or SE(3) with ``with_scale=False`` for metric estimates).
- ``ate_se3``: ATE of a metric estimate after one rigid SE(3) fit, no scale fit (a wrong scale is
  error); ``ate_fraction_of_path``: that RMSE over the length of the true path.
- ``segment_scale``/``scale_drift``: the scale of the estimate relative to the truth, fitted on a
  segment of frames; drift = last segment's scale / first segment's scale - 1.
- ``step_jump_ratio``: max / median of the per-frame camera-centre steps (pose-jump detector).
- ``depth_metrics``: AbsRel and delta1 after per-frame median scaling of the predicted depth.

Positions are (F, 3) camera centres (the translation of camera-to-world poses).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from da3_ros.geometry.alignment import umeyama
from da3_ros.geometry.transforms import transform_points, transform_scale

__all__ = ["AteResult", "ate_sim3", "segment_scale", "scale_drift", "step_jump_ratio", "depth_metrics",
           "path_length", "ate_se3", "ate_fraction_of_path"]


@dataclass
class AteResult:
    rmse: float
    max_error: float
    scale: float          # of the fitted estimate->truth transform (truth units per estimate unit)
    transform: np.ndarray  # 4x4 Sim(3) estimate -> truth
    aligned: np.ndarray   # (F, 3) estimate positions in truth frame


def _positions(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim == 3 and x.shape[1:] == (4, 4):
        x = x[:, :3, 3]
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (F, 3) positions or (F, 4, 4) poses, got {x.shape}")
    return x


def path_length(positions: np.ndarray) -> float:
    p = _positions(positions, "positions")
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def ate_sim3(estimate: np.ndarray, truth: np.ndarray, with_scale: bool = True) -> AteResult:
    """ATE after aligning ``estimate`` onto ``truth`` with one Sim(3) (SE(3) if not with_scale)."""
    est = _positions(estimate, "estimate")
    gt = _positions(truth, "truth")
    if est.shape != gt.shape:
        raise ValueError(f"estimate and truth must have the same number of frames, got {est.shape} vs {gt.shape}")
    T = umeyama(est, gt, with_scale=with_scale)
    aligned = transform_points(T, est)
    err = np.linalg.norm(aligned - gt, axis=1)
    return AteResult(float(np.sqrt(np.mean(err ** 2))), float(err.max()), transform_scale(T), T, aligned)


def ate_se3(estimate: np.ndarray, truth: np.ndarray) -> AteResult:
    """ATE of a metric estimate in the truth's units (metres): one rigid SE(3) alignment of
    ``estimate`` onto ``truth`` and no scale fit, so an error of the estimate's scale counts as
    trajectory error (``result.scale`` is 1)."""
    return ate_sim3(estimate, truth, with_scale=False)


def ate_fraction_of_path(estimate: np.ndarray, truth: np.ndarray) -> float:
    """``ate_se3(estimate, truth).rmse / path_length(truth)``: metric ATE as a fraction of the path."""
    length = path_length(truth)
    if not length > 0:
        raise ValueError("the true path has zero length; the ATE fraction is undefined")
    return ate_se3(estimate, truth).rmse / length


def segment_scale(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Estimated-to-true scale of a segment: 1 / (Sim(3) scale fitted truth <- estimate).

    The segment must contain real translation (a static or pure-rotation segment has no scale).
    """
    est = _positions(estimate, "estimate")
    gt = _positions(truth, "truth")
    spread = np.sqrt(np.mean(np.sum((gt - gt.mean(0)) ** 2, axis=1)))
    if spread < 1e-9:
        raise ValueError("segment has no translation; its scale is undefined")
    return 1.0 / transform_scale(umeyama(est, gt, with_scale=True))


def scale_drift(estimate: np.ndarray, truth: np.ndarray, segment: int = 50) -> Dict[str, float]:
    """Scale of the first and last ``segment`` frames and their ratio (``drift = last/first - 1``)."""
    est = _positions(estimate, "estimate")
    gt = _positions(truth, "truth")
    if len(est) < 2 * segment:
        raise ValueError(f"need at least {2 * segment} frames for segments of {segment}, got {len(est)}")
    first = segment_scale(est[:segment], gt[:segment])
    last = segment_scale(est[-segment:], gt[-segment:])
    return {"scale_first": first, "scale_last": last, "drift": last / first - 1.0}


def step_jump_ratio(positions: np.ndarray, min_step: float = 0.0,
                    frame_index: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Max and median of the frame-to-frame steps (steps <= ``min_step`` are left out of the
    median, so that stops do not make every motion look like a jump). With ``frame_index`` (F,),
    each step is divided by the index gap, so that frames missing from a trajectory (rejected
    windows) do not count as jumps."""
    p = _positions(positions, "positions")
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
    if frame_index is not None:
        gaps = np.diff(np.asarray(frame_index, np.float64))
        if gaps.shape != steps.shape or np.any(gaps <= 0):
            raise ValueError("frame_index must have one strictly increasing entry per position")
        steps = steps / gaps
    moving = steps[steps > min_step]
    med = float(np.median(moving)) if moving.size else float("nan")
    return {"max_step": float(steps.max()), "median_step": med, "ratio": float(steps.max() / med)}


def depth_metrics(pred: np.ndarray, truth: np.ndarray, valid: Optional[np.ndarray] = None) -> Dict[str, float]:
    """AbsRel and delta1 (max(p/t, t/p) < 1.25) of one depth map after median scaling."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(truth, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred and truth must have the same shape, got {p.shape} vs {t.shape}")
    m = (t > 0) & np.isfinite(t) & (p > 0) & np.isfinite(p)
    if valid is not None:
        m &= np.asarray(valid, bool)
    if not np.any(m):
        raise ValueError("no valid pixels (truth and pred must be > 0 and finite somewhere)")
    p, t = p[m], t[m]
    p = p * (np.median(t) / np.median(p))
    ratio = np.maximum(p / t, t / p)
    return {"abs_rel": float(np.mean(np.abs(p - t) / t)), "delta1": float(np.mean(ratio < 1.25))}
