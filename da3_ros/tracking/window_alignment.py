"""Align one window's frame to the odometry frame from the keyframes it shares with earlier windows.

Correspondences (all "free", no matching needed):
- dense points: the same grid pixel of the same shared keyframe, unprojected once with the
  window's depth/intrinsics/pose (window frame) and once as stored when the frame became a
  keyframe (odometry frame); weight ``sqrt(conf_window * conf_stored)``, pixels whose confidence
  is below ``conf_threshold_ratio`` x the median confidence are dropped;
- the poses of the shared keyframes, as 4 points each (camera centre and centre + median depth x
  each camera axis), together weighted ``pose_weight`` x the total point weight.

The transform ``T_odom_window`` (Sim(3), or SE(3) for metric models) maps window-frame points to
odometry points; it is solved by Huber IRLS with residuals relative to the stored depth of each
point. Scale (up-to-scale models): by default (``scale_from_depth_ratio``) first, as the weighted
median of the per-pixel depth ratios stored/window, then SE(3) by IRLS (DA3-Streaming's
"scale+se3"); otherwise jointly as Sim(3). Metric models: SE(3) with the scale fixed to 1. Quality gates (any
failing one rejects the window, with the reason in ``reason``):
- ``min_inlier_ratio``: weighted share of points with relative residual <= ``inlier_threshold``;
- ``max_median_residual``: weighted median relative residual;
- ``max_scale_inconsistency``: each shared keyframe's own depth ratio (odom/window, weighted
  median over its points) must agree with the fitted scale within this factor (scale jump);
- ``max_shared_rotation_deg`` / ``max_shared_centre_error``: the shared keyframes' aligned poses
  must agree with their stored odometry poses (centre error relative to the median depth).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from da3_ros.geometry.alignment import robust_align, weighted_median
from da3_ros.geometry.transforms import rotation_angle

__all__ = ["AlignmentConfig", "SharedView", "WindowAlignment", "align_window"]


@dataclass
class AlignmentConfig:
    with_scale: bool = True
    huber_delta: float = 0.03
    max_iterations: int = 5
    conf_threshold_ratio: float = 0.5
    pose_weight: float = 1.0
    scale_from_depth_ratio: bool = True
    inlier_threshold: float = 0.08
    min_correspondences: int = 50
    min_inlier_ratio: float = 0.6
    max_median_residual: float = 0.05
    max_scale_inconsistency: float = 1.15
    max_shared_rotation_deg: float = 5.0
    max_shared_centre_error: float = 0.1

    def __post_init__(self):
        for name in ("huber_delta", "inlier_threshold", "max_median_residual", "pose_weight"):
            if not getattr(self, name) >= 0 or (name != "pose_weight" and getattr(self, name) == 0):
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_inlier_ratio <= 1.0:
            raise ValueError(f"min_inlier_ratio must be in [0, 1], got {self.min_inlier_ratio}")
        if not self.max_scale_inconsistency >= 1.0:
            raise ValueError(f"max_scale_inconsistency must be >= 1, got {self.max_scale_inconsistency}")


@dataclass
class SharedView:
    """One shared keyframe: stored odometry data + this window's data on the same grid pixels.

    ``points_odom`` (M, 3), ``depth_odom`` (M,), ``conf_odom`` (M,): stored at keyframe time;
    ``T_odom_cam``: stored keyframe pose (SE(3)); ``median_depth``: stored, odometry units.
    ``points_window`` (M, 3), ``depth_window`` (M,), ``conf_window`` (M,): this window;
    ``T_window_cam``: the keyframe's camera-to-window pose from this window's extrinsics.
    """

    points_odom: np.ndarray
    depth_odom: np.ndarray
    conf_odom: np.ndarray
    T_odom_cam: np.ndarray
    median_depth: float
    points_window: np.ndarray
    depth_window: np.ndarray
    conf_window: np.ndarray
    T_window_cam: np.ndarray


@dataclass
class WindowAlignment:
    ok: bool
    reason: str
    T_odom_window: Optional[np.ndarray] = None
    scale: float = float("nan")
    n_correspondences: int = 0
    inlier_ratio: float = float("nan")
    median_residual: float = float("nan")
    scale_inconsistency: float = float("nan")
    shared_rotation_error_deg: float = float("nan")
    shared_centre_error: float = float("nan")
    stats: Dict[str, float] = field(default_factory=dict)


@dataclass
class _Correspondences:
    """Window-frame ``src`` and odometry ``dst`` points with their weight ``w``, the residual scale ``rs``
    (stored depth), the ``owner`` (shared keyframe index; -1 for a pose point) and the window depth ``dwin``
    (NaN for a pose point): lists of pieces while gathering, arrays after :meth:`stacked`."""

    src: list = field(default_factory=list)
    dst: list = field(default_factory=list)
    w: list = field(default_factory=list)
    rs: list = field(default_factory=list)
    owner: list = field(default_factory=list)
    dwin: list = field(default_factory=list)

    def append(self, src, dst, w, rs, owner, dwin) -> None:
        for name, piece in zip(("src", "dst", "w", "rs", "owner", "dwin"), (src, dst, w, rs, owner, dwin)):
            getattr(self, name).append(piece)

    def stacked(self) -> "_Correspondences":
        return _Correspondences(*(np.concatenate(getattr(self, name))
                                  for name in ("src", "dst", "w", "rs", "owner", "dwin")))


def _confidence_floor(shared: List[SharedView], conf_threshold_ratio: float) -> float:
    """``conf_threshold_ratio`` x the median finite confidence of both sides (inf without any)."""
    conf_all = np.concatenate([np.concatenate([s.conf_window, s.conf_odom]) for s in shared])
    conf_all = conf_all[np.isfinite(conf_all)]
    return conf_threshold_ratio * float(np.median(conf_all)) if conf_all.size else np.inf


def _point_correspondences(shared: List[SharedView], conf_min: float):
    """The confident, valid-depth pixels of every shared keyframe.

    Returns:
        ``(correspondences, arm_lengths)``: the point pieces, and per keyframe the median window / stored
        depth of those pixels (``(0.0, 0.0)`` when it has none).
    """
    c = _Correspondences()
    arm_lengths = []
    for k, s in enumerate(shared):
        valid = (
            (s.conf_window >= conf_min) & (s.conf_odom >= conf_min)
            & (s.depth_window > 0) & (s.depth_odom > 0)
            & np.isfinite(s.depth_window) & np.isfinite(s.depth_odom)
        )
        c.append(s.points_window[valid], s.points_odom[valid], np.sqrt(s.conf_window[valid] * s.conf_odom[valid]),
                 s.depth_odom[valid], np.full(int(valid.sum()), k), s.depth_window[valid])
        arm_lengths.append((float(np.median(c.dwin[-1])), float(np.median(c.rs[-1]))) if valid.any() else (0.0, 0.0))
    return c, arm_lengths


def _append_pose_points(c: _Correspondences, shared: List[SharedView], arm_lengths, pose_weight: float,
                        point_weight: float) -> None:
    """Camera poses as 4 points each: centre + each camera axis x the median depth of the SAME confident
    pixels on both sides (so the arm lengths agree in scale); together ``pose_weight`` x ``point_weight``."""
    for s, (med_w, med_o) in zip(shared, arm_lengths):
        if not (med_w > 0 and med_o > 0):
            continue
        c.append(s.T_window_cam[:3, 3] + np.vstack([np.zeros(3), med_w * s.T_window_cam[:3, :3].T]),
                 s.T_odom_cam[:3, 3] + np.vstack([np.zeros(3), med_o * s.T_odom_cam[:3, :3].T]),
                 np.full(4, pose_weight * point_weight / (4 * len(shared))), np.full(4, med_o), np.full(4, -1),
                 np.full(4, np.nan))


def _depth_ratio_prescale(c: _Correspondences, is_pt: np.ndarray):
    """Scale first (robust: weighted median of per-pixel depth ratios): ``(pre_scale, pre-scaled src)``.

    Pose points: the window camera centres are scaled, the axis arms kept (already depth-scaled).
    """
    pre_scale = weighted_median(c.rs[is_pt] / np.maximum(c.dwin[is_pt], 1e-12), c.w[is_pt])
    src = np.where(is_pt[:, None], pre_scale * c.src, c.src)
    pose_src = ~is_pt
    if np.any(pose_src):
        k = np.flatnonzero(pose_src).reshape(-1, 4)
        centres = src[k[:, 0]]
        arms = src[k[:, 1:]] - centres[:, None, :]
        src[k[:, 0]] = pre_scale * centres
        src[k[:, 1:]] = pre_scale * centres[:, None, :] + pre_scale * arms
    return pre_scale, src


def _shared_keyframe_errors(shared: List[SharedView], c: _Correspondences, T: np.ndarray, s_fit: float):
    """Per-keyframe scale (depth ratio) vs the fitted scale, and shared-pose agreement.

    Returns:
        ``(worst_scale, worst_rot_deg, worst_centre)``: the worst scale factor (>= 1), rotation error and
        centre error relative to the stored median depth over the shared keyframes.
    """
    worst_scale = 1.0
    worst_rot = 0.0
    worst_centre = 0.0
    R_ow = T[:3, :3] / s_fit
    for k, s in enumerate(shared):
        m = c.owner == k
        if np.any(m):
            ratio = c.rs[m] / np.maximum(c.dwin[m], 1e-12)
            s_k = weighted_median(ratio, c.w[m])
            worst_scale = max(worst_scale, max(s_k / s_fit, s_fit / s_k))
        R_aligned = R_ow @ s.T_window_cam[:3, :3]
        worst_rot = max(worst_rot, float(np.degrees(rotation_angle(s.T_odom_cam[:3, :3].T @ R_aligned))))
        c_aligned = T[:3, :3] @ s.T_window_cam[:3, 3] + T[:3, 3]
        worst_centre = max(worst_centre, float(np.linalg.norm(c_aligned - s.T_odom_cam[:3, 3])) / s.median_depth)
    return worst_scale, worst_rot, worst_centre


def _failed_gate(result: WindowAlignment, cfg: AlignmentConfig) -> str:
    """The reason of the first quality gate ``result`` fails, or "" when it passes them all."""
    if result.inlier_ratio < cfg.min_inlier_ratio:
        return f"low_inlier_ratio ({result.inlier_ratio:.2f} < {cfg.min_inlier_ratio})"
    if result.median_residual > cfg.max_median_residual:
        return f"high_residual ({result.median_residual:.3f} > {cfg.max_median_residual})"
    if result.scale_inconsistency > cfg.max_scale_inconsistency:
        return f"scale_jump ({result.scale_inconsistency:.3f} > {cfg.max_scale_inconsistency})"
    if result.shared_rotation_error_deg > cfg.max_shared_rotation_deg:
        return f"shared_pose_rotation ({result.shared_rotation_error_deg:.2f} deg > {cfg.max_shared_rotation_deg})"
    if result.shared_centre_error > cfg.max_shared_centre_error:
        return f"shared_pose_centre ({result.shared_centre_error:.3f} > {cfg.max_shared_centre_error})"
    return ""


def align_window(shared: List[SharedView], config: AlignmentConfig) -> WindowAlignment:
    """Estimate ``T_odom_window`` from the shared keyframes and apply the quality gates."""
    if not shared:
        return WindowAlignment(False, "no_shared_keyframe")
    cfg = config
    pieces, arm_lengths = _point_correspondences(shared, _confidence_floor(shared, cfg.conf_threshold_ratio))
    n_points = int(sum(len(x) for x in pieces.w))
    if n_points < cfg.min_correspondences:
        return WindowAlignment(False, f"too_few_correspondences ({n_points} < {cfg.min_correspondences})",
                               n_correspondences=n_points)
    point_weight = float(sum(x.sum() for x in pieces.w))
    _append_pose_points(pieces, shared, arm_lengths, cfg.pose_weight, point_weight)
    c = pieces.stacked()
    is_pt = c.owner >= 0
    pre_scale, src = 1.0, c.src
    if cfg.with_scale and cfg.scale_from_depth_ratio:
        pre_scale, src = _depth_ratio_prescale(c, is_pt)
    try:
        fit = robust_align(src, c.dst, c.w, with_scale=cfg.with_scale and not cfg.scale_from_depth_ratio,
                           huber_delta=cfg.huber_delta, max_iterations=cfg.max_iterations,
                           residual_scale=c.rs, inlier_threshold=cfg.inlier_threshold)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return WindowAlignment(False, f"alignment_failed: {exc}", n_correspondences=n_points)

    T = fit.transform @ np.diag([pre_scale, pre_scale, pre_scale, 1.0])
    s_fit = fit.scale * pre_scale
    inlier_ratio = float(c.w[is_pt & fit.inlier_mask].sum() / c.w[is_pt].sum())
    median_res = weighted_median(fit.residuals[is_pt], c.w[is_pt])
    worst_scale, worst_rot, worst_centre = _shared_keyframe_errors(shared, c, T, s_fit)
    result = WindowAlignment(
        ok=True, reason="", T_odom_window=T, scale=s_fit, n_correspondences=n_points,
        inlier_ratio=inlier_ratio, median_residual=median_res, scale_inconsistency=worst_scale,
        shared_rotation_error_deg=worst_rot, shared_centre_error=worst_centre,
        stats={"iterations": float(fit.iterations)},
    )
    reason = _failed_gate(result, cfg)
    if reason:
        result.ok, result.reason = False, reason
    return result
