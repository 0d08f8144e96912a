"""``LoopVerifier``: a loop candidate becomes a loop only when a window of [candidate keyframes + query] passes the
tracker's own quality gates and the query's relative pose agrees with at least one neighbouring keyframe.

What the verifier keeps of each keyframe is a :class:`LoopKeyframe` (its network image, grid-sampled points /
depths / confidences in the map frame, its pose; the tracker drops keyframes once they leave the sliding window).
``verify(query, candidates, predict, K)`` runs three checks on one prediction of the window
``[candidate keyframes..., query]`` (``predict``: the backend, images (N, h, w, 3) -> prediction with ``depth``,
``depth_conf``, ``extrinsics``):

1. ``gates``: ``tracking.window_alignment.align_window`` of the window to the stored candidate keyframes with the
   tracker's ``AlignmentConfig`` (inlier ratio, residual, scale jump, shared-pose agreement): the window is
   placed in the map exactly as the tracker would place a window of its own;
2. ``neighbour``: the query's map pose from the candidate keyframe alone and from each of its neighbours alone
   (one ``align_window`` each); at least one neighbour's must agree with the candidate's within
   ``max_neighbour_rotation_deg`` / ``max_neighbour_centre_error`` (x median depth);
3. ``overlap``: the query's own depth, placed by the window's query pose, is projected into each candidate
   view of the same window and compared with that view's depth; the weighted share of points within
   ``overlap_inlier_threshold`` (relative) must reach ``min_overlap_inlier_ratio`` (a look-alike place whose
   images match but whose geometry does not, e.g. a mirrored copy of a room, fails here).

The result (:class:`LoopVerification`) has the reason of the first failed check, the query's map pose, its pose
relative to the candidate (``T_candidate_query``, the loop edge of the pose graph) and the window's scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence

import numpy as np

from da3_ros.geometry.transforms import extrinsics_to_T_world_cam, rotation_angle
from da3_ros.tracking.pixel_grid import PixelGrid
from da3_ros.tracking.window_alignment import AlignmentConfig, SharedView, align_window

__all__ = ["LoopKeyframe", "LoopVerification", "LoopVerifier", "VerificationConfig"]


@dataclass
class LoopKeyframe:
    """A keyframe as the verifier keeps it: grid-sampled (``PixelGrid`` of the network size) in the map frame."""

    keyframe_id: Hashable
    stamp: float
    image: np.ndarray            # (h, w, 3) uint8 network input
    T_map_cam: np.ndarray        # (4, 4) SE(3)
    points_map: np.ndarray       # (M, 3)
    depth: np.ndarray            # (M,) map units
    conf: np.ndarray             # (M,)
    median_depth: float


@dataclass
class VerificationConfig:
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    max_neighbour_rotation_deg: float = 3.0
    max_neighbour_centre_error: float = 0.08
    overlap_inlier_threshold: float = 0.05
    min_overlap_inlier_ratio: float = 0.6
    min_overlap_points: int = 50


@dataclass
class LoopVerification:
    ok: bool
    reason: str
    query_id: Hashable
    candidate_id: Hashable
    T_map_query: Optional[np.ndarray] = None
    T_candidate_query: Optional[np.ndarray] = None
    scale: float = float("nan")
    stats: Dict[str, float] = field(default_factory=dict)


def _field(prediction: Any, name: str):
    return prediction.get(name) if isinstance(prediction, Mapping) else getattr(prediction, name, None)


def _pose_in_map(T_map_window: np.ndarray, T_window_cam: np.ndarray) -> np.ndarray:
    s = float(np.cbrt(np.linalg.det(T_map_window[:3, :3])))
    pose = np.eye(4)
    pose[:3, :3] = T_map_window[:3, :3] / s @ T_window_cam[:3, :3]
    pose[:3, 3] = T_map_window[:3, :3] @ T_window_cam[:3, 3] + T_map_window[:3, 3]
    return pose


class LoopVerifier:
    """Geometric verification of loop candidates (see the module docstring)."""

    def __init__(self, config: Optional[VerificationConfig] = None, grid_points: int = 1000):
        self.config = config if config is not None else VerificationConfig()
        self.grid_points = int(grid_points)
        self._grid: Optional[PixelGrid] = None

    def grid(self, height: int, width: int) -> PixelGrid:
        if self._grid is None or (self._grid.height, self._grid.width) != (height, width):
            self._grid = PixelGrid(height, width, self.grid_points)
        return self._grid

    def keyframe(self, keyframe_id: Hashable, stamp: float, image: np.ndarray, T_map_cam: np.ndarray,
                 depth: np.ndarray, conf: np.ndarray, K: np.ndarray) -> LoopKeyframe:
        """A :class:`LoopKeyframe` from a keyframe's full-resolution depth (map units), confidence and pose."""
        h, w = depth.shape
        grid = self.grid(h, w)
        d = grid.sample(depth[None])[0].astype(np.float64)
        c = grid.sample(conf[None])[0].astype(np.float64)
        pts_cam = grid.unproject(d[None], np.asarray(K, np.float64)[None])[0]
        T = np.asarray(T_map_cam, np.float64)
        pts = pts_cam @ T[:3, :3].T + T[:3, 3]
        ok = (d > 0) & np.isfinite(d)
        med = float(np.median(d[ok])) if ok.any() else float("nan")
        return LoopKeyframe(keyframe_id, float(stamp), np.asarray(image), T.copy(), pts, d, c, med)

    def verify(self, query_id: Hashable, query_image: np.ndarray, candidates: Sequence[LoopKeyframe],
               predict: Callable[[np.ndarray], Any], K: np.ndarray) -> LoopVerification:
        """Verify the query against ``candidates`` (the candidate keyframe FIRST, then its neighbours)."""
        if not candidates:
            raise ValueError("verify needs the candidate keyframe (and its neighbours)")
        candidate = candidates[0]
        images = np.stack([kf.image for kf in candidates] + [np.asarray(query_image)])
        prediction = predict(images)
        depth = np.asarray(_field(prediction, "depth"), np.float64)
        conf = _field(prediction, "depth_conf")
        conf = np.ones_like(depth) if conf is None else np.asarray(conf, np.float64)
        c2w = extrinsics_to_T_world_cam(np.asarray(_field(prediction, "extrinsics"), np.float64))
        n, h, w = depth.shape
        K = np.asarray(K, np.float64)
        K = np.broadcast_to(K, (n, 3, 3)) if K.shape == (3, 3) else K
        grid = self.grid(h, w)
        depth_g, conf_g = grid.sample(depth), grid.sample(conf)
        pts_cam = grid.unproject(depth_g, K)
        pts_win = np.matmul(pts_cam, np.swapaxes(c2w[:, :3, :3], 1, 2)) + c2w[:, None, :3, 3]
        shared = [SharedView(points_odom=kf.points_map, depth_odom=kf.depth, conf_odom=kf.conf,
                             T_odom_cam=kf.T_map_cam, median_depth=kf.median_depth, points_window=pts_win[i],
                             depth_window=depth_g[i], conf_window=conf_g[i], T_window_cam=c2w[i])
                  for i, kf in enumerate(candidates)]
        result = LoopVerification(False, "", query_id, candidate.keyframe_id)
        al = align_window(shared, self.config.alignment)
        result.stats.update(inlier_ratio=al.inlier_ratio, median_residual=al.median_residual,
                            scale_inconsistency=al.scale_inconsistency)
        if not al.ok:
            result.reason = f"gates: {al.reason}"
            return result
        T_map_query = _pose_in_map(al.T_odom_window, c2w[-1])
        reason = self._neighbour_check(shared, c2w[-1], candidate.median_depth, result.stats)
        if not reason:
            reason = self._overlap_check(depth, conf, depth_g[-1], conf_g[-1], pts_cam[-1], c2w, K,
                                         len(candidates), result.stats)
        if reason:
            result.reason = reason
            return result
        result.ok = True
        result.T_map_query = T_map_query
        result.T_candidate_query = np.linalg.solve(candidate.T_map_cam, T_map_query)
        result.scale = al.scale
        return result

    def _neighbour_check(self, shared: List[SharedView], T_window_query: np.ndarray, median_depth: float,
                         stats: Dict[str, float]) -> str:
        """The query's map pose from the candidate alone vs from each neighbour alone: "" when one agrees."""
        cfg = self.config
        if len(shared) < 2:
            return "neighbour: no neighbouring keyframe"
        single = align_window(shared[:1], cfg.alignment)
        if not single.ok:
            return f"neighbour: candidate alone: {single.reason}"
        from_candidate = _pose_in_map(single.T_odom_window, T_window_query)
        best = (np.inf, np.inf)
        for view in shared[1:]:
            al = align_window([view], cfg.alignment)
            if not al.ok:
                continue
            pose = _pose_in_map(al.T_odom_window, T_window_query)
            rot = float(np.degrees(rotation_angle(from_candidate[:3, :3].T @ pose[:3, :3])))
            centre = float(np.linalg.norm(pose[:3, 3] - from_candidate[:3, 3])) / median_depth
            best = min(best, (centre, rot))
            if rot <= cfg.max_neighbour_rotation_deg and centre <= cfg.max_neighbour_centre_error:
                stats.update(neighbour_centre_error=centre, neighbour_rotation_deg=rot)
                return ""
        stats.update(neighbour_centre_error=best[0], neighbour_rotation_deg=best[1])
        return f"neighbour: no neighbouring keyframe agrees (best centre {best[0]:.3f}, rotation {best[1]:.2f} deg)"

    def _overlap_check(self, depth, conf, depth_q, conf_q, pts_cam_q, c2w, K, n_candidates,
                       stats: Dict[str, float]) -> str:
        """The query's points (window frame) projected into the candidate views vs their predicted depth."""
        cfg = self.config
        ok_q = (depth_q > 0) & np.isfinite(depth_q)
        conf_floor = cfg.alignment.conf_threshold_ratio * float(np.median(conf_q[ok_q])) if ok_q.any() else np.inf
        keep = ok_q & (conf_q >= conf_floor)
        pts_win = pts_cam_q[keep] @ c2w[-1][:3, :3].T + c2w[-1][:3, 3]
        weight_q = conf_q[keep]
        inlier_w, total_w, points = 0.0, 0.0, 0
        n, h, w = depth.shape
        for i in range(n_candidates):
            T_cam_win = np.linalg.inv(c2w[i])
            p = pts_win @ T_cam_win[:3, :3].T + T_cam_win[:3, 3]
            z = p[:, 2]
            front = z > 1e-6
            u = K[i, 0, 0] * p[:, 0] / np.where(front, z, 1.0) + K[i, 0, 2]
            v = K[i, 1, 1] * p[:, 1] / np.where(front, z, 1.0) + K[i, 1, 2]
            ui, vi = np.rint(u).astype(np.int64), np.rint(v).astype(np.int64)
            inside = front & (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
            if not inside.any():
                continue
            d_view = depth[i][vi[inside], ui[inside]]
            c_view = conf[i][vi[inside], ui[inside]]
            valid = (d_view > 0) & np.isfinite(d_view)
            rel = np.abs(z[inside][valid] - d_view[valid]) / d_view[valid]
            wgt = np.sqrt(weight_q[inside][valid] * c_view[valid])
            inlier_w += float(wgt[rel <= cfg.overlap_inlier_threshold].sum())
            total_w += float(wgt.sum())
            points += int(valid.sum())
        ratio = inlier_w / total_w if total_w > 0 else 0.0
        stats.update(overlap_points=float(points), overlap_inlier_ratio=ratio)
        if points < cfg.min_overlap_points:
            return f"overlap: too few query points seen by the candidates ({points} < {cfg.min_overlap_points})"
        if ratio < cfg.min_overlap_inlier_ratio:
            return (f"overlap: query geometry disagrees with the candidates "
                    f"({ratio:.2f} < {cfg.min_overlap_inlier_ratio})")
        return ""
