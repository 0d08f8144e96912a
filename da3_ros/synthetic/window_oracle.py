"""Window oracle: fake multi-view model predictions made from synthetic ground truth.

``WindowOracle.predict(frame_ids)`` returns an ``OracleWindow`` with the same array fields as
the real model output (``WindowPrediction``): per view, in the order of ``frame_ids``,

- ``depth`` (N, h, w) float32: z-depth in the WINDOW's scale, ``scale * true_depth`` with a
  smooth multiplicative warp, per-pixel noise and larger errors inside low-confidence blobs;
- ``depth_conf`` (N, h, w) float32 >= 1 (``1 + exp(logit)`` like DA3): high (~5-12) where the
  depth is good, ~1.1-1.5 inside the low-confidence blobs;
- ``extrinsics`` (N, 3, 4) float32 world->camera where "world" is the camera frame of the
  reference view (``ref_view``), translations in window scale, with rotation/translation noise
  on every non-reference view (the reference view is exactly ``[I|0]``, as DA3 returns);
- ``intrinsics`` (N, 3, 3) float32 in pixels of the (h, w) output (optional focal noise).

Each window draws its own scale, log-uniform in ``scale_range`` (any-view models have an
arbitrary scale per window); ``metric=True`` fixes the scale to 1 (metres). A "garbage" window
(``garbage=True`` or with probability ``garbage_probability``) has confident but wrong depth
and poses, the failure a tracker must reject.

Ground truth of the window is returned too: ``scale`` (window units per metre) and
``T_world_ref`` (camera-to-world pose of the reference view), so that
``p_window = scale * inv(T_world_ref) @ p_world``.

Pose-conditioned windows (``predict(..., pose_encoding=...)``, the ``(N, 9)`` / ``(1, N, 9)`` encoding a
pose-conditioned model takes, e.g. ``PoseConditionedWindow.pose_encoding``): the oracle follows the given
poses as a well-behaved conditioned network does. The window frame is the one of the encoding (view 0 =
identity, the official normalisation's unit), the extrinsics are the decoded given poses (plus the usual
noise on views 1..N-1), and ``scale`` is no longer drawn: it is the unit of the encoding per metre, fitted
from the encoded camera centres against the true ones (``sum |c_enc| |c_true| / sum |c_true|^2``), so the
depth is the ground-truth scene in the unit of the given poses once the window is aligned back to them.
With no baseline (all true centres coincide) the unit is unobservable and the drawn scale is kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.geometry.transforms import (
    extrinsics_to_T_world_cam,
    invert_transform,
    rotation_from_axis_angle,
    T_world_cam_to_extrinsics,
)

__all__ = ["OracleNoise", "OracleWindow", "WindowOracle", "resize_intrinsics"]


@dataclass
class OracleNoise:
    """Noise model of the oracle (all relative numbers are fractions, angles in degrees)."""

    scale_range: Tuple[float, float] = (0.3, 3.0)
    depth_noise: float = 0.01          # per-pixel multiplicative Gaussian sigma
    depth_warp: float = 0.02           # amplitude of a smooth multiplicative warp per view
    rotation_noise_deg: float = 0.2    # sigma per axis, non-reference views
    translation_noise: float = 0.002   # sigma per axis, relative to the median scene depth
    focal_noise: float = 0.0           # sigma of a multiplicative focal error per window
    low_conf_blobs: int = 2            # low-confidence regions per view
    low_conf_error: float = 0.25       # depth error amplitude inside those regions
    garbage_probability: float = 0.0
    #: a systematic heading error: each non-reference view's orientation relative to the reference is turned
    #: about the reference camera's y axis (vertical for a level camera) by this many degrees per metre between
    #: them (its position stays), so chained windows drift like a gyro bias (loop closure's evidence:
    #: bench/bench_loop.py)
    yaw_bias_deg_per_m: float = 0.0


@dataclass
class OracleWindow:
    """One oracle prediction; array fields as in the real model output (see module doc)."""

    depth: np.ndarray
    depth_conf: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    frame_ids: List[int]
    ref_index: int
    scale: float
    T_world_ref: np.ndarray
    garbage: bool = False
    sky: Optional[np.ndarray] = None

    @property
    def views(self) -> int:
        return int(self.depth.shape[0])


def resize_intrinsics(K: np.ndarray, src_hw: Tuple[int, int], dst_hw: Tuple[int, int]) -> np.ndarray:
    """Intrinsics after resizing an image from ``src_hw`` to ``dst_hw`` (OpenCV pixel centres)."""
    return PinholeCamera(int(src_hw[1]), int(src_hw[0]), K).resized(int(dst_hw[1]), int(dst_hw[0])).K.copy()


def _smooth_field(rng, h, w, cells=4):
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


class WindowOracle:
    """Oracle over a ``SyntheticSequence`` (anything with ``render(i) -> (rgb, depth)``, ``K`` and
    ``T_world_cam`` (F, 4, 4)). Deterministic: window ``k`` (the k-th ``predict`` call) uses the
    random stream ``(seed, k)``."""

    def __init__(
        self,
        sequence,
        noise: Optional[OracleNoise] = None,
        seed: int = 0,
        metric: bool = False,
        out_hw: Optional[Tuple[int, int]] = None,
    ):
        self.sequence = sequence
        self.noise = noise if noise is not None else OracleNoise()
        self.seed = int(seed)
        self.metric = bool(metric)
        self.out_hw = out_hw
        self.calls = 0

    def _ref_index(self, ref_view: Union[str, int], n: int, rng) -> int:
        if isinstance(ref_view, (int, np.integer)):
            if not 0 <= int(ref_view) < n:
                raise ValueError(f"ref_view index {ref_view} out of range for {n} views")
            return int(ref_view)
        if ref_view == "first":
            return 0
        if ref_view == "last":
            return n - 1
        if ref_view == "middle":
            return n // 2
        if ref_view == "random":
            return int(rng.integers(n))
        raise ValueError(f"ref_view must be 'first', 'middle', 'last', 'random' or an int, got {ref_view!r}")

    @staticmethod
    def _follow_pose_encoding(pose_encoding, T_ref_views_true, drawn_scale, hw):
        """(scale, poses of the views in the encoding's frame in metres) for a pose-conditioned window."""
        from da3_ros.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics

        enc = pose_encoding
        if hasattr(enc, "detach") and hasattr(enc, "cpu"):  # a torch tensor (duck-typed: no torch import here)
            enc = enc.detach().cpu().numpy()
        enc = np.asarray(enc, dtype=np.float64)
        n = len(T_ref_views_true)
        if enc.ndim == 3 and enc.shape[0] == 1:
            enc = enc[0]
        if enc.shape != (n, 9) or not np.all(np.isfinite(enc)):
            raise ValueError(f"pose_encoding must be finite with shape ({n}, 9) or (1, {n}, 9), got {enc.shape}")
        w2c, _ = pose_encoding_to_extrinsics_intrinsics(enc, hw)
        T_enc = extrinsics_to_T_world_cam(w2c)  # camera -> encoding frame (view 0 ~ identity)
        c_enc = np.linalg.norm(T_enc[:, :3, 3], axis=1)
        c_true = np.linalg.norm(np.stack([T[:3, 3] for T in T_ref_views_true]), axis=1)
        denom = float(np.sum(c_true * c_true))
        scale = float(np.sum(c_enc * c_true) / denom) if denom > 1e-12 else drawn_scale
        metric = T_enc.copy()
        metric[:, :3, 3] /= scale
        return scale, list(metric)

    def predict(
        self,
        frame_ids: Sequence[int],
        ref_view: Union[str, int] = "first",
        garbage: Optional[bool] = None,
        pose_encoding=None,
    ) -> OracleWindow:
        """Prediction for the views ``frame_ids`` (indices into the sequence, repeats allowed).

        ``pose_encoding``: optional ``(N, 9)`` or ``(1, N, 9)`` (NumPy or torch) encoding of the window's
        known, normalised poses; the window then follows them (module doc) and ``ref_view`` is unused
        (view 0 is the reference, as for a pose-conditioned model)."""
        ids = [int(i) for i in frame_ids]
        if not ids:
            raise ValueError("frame_ids must not be empty")
        rng = np.random.default_rng([self.seed, self.calls])
        self.calls += 1
        nz = self.noise
        n = len(ids)
        ref = self._ref_index(ref_view, n, rng) if pose_encoding is None else 0
        if garbage is None:
            garbage = bool(rng.random() < nz.garbage_probability)
        scale = 1.0 if self.metric else float(np.exp(rng.uniform(*np.log(nz.scale_range))))
        T_wc = np.asarray(self.sequence.T_world_cam)[ids]
        T_world_ref = T_wc[ref]
        T_ref_world = invert_transform(T_world_ref)
        T_ref_views = [T_ref_world @ T_wc[v] for v in range(n)]  # metres
        K0 = np.asarray(self.sequence.K, np.float64)
        depths = [self.sequence.render(i)[1] for i in ids]
        H, W = depths[0].shape
        h, w = self.out_hw if self.out_hw is not None else (H, W)
        if pose_encoding is not None:
            scale, T_ref_views = self._follow_pose_encoding(pose_encoding, T_ref_views, scale, (h, w))
        K = resize_intrinsics(K0, (H, W), (h, w)) if (h, w) != (H, W) else K0.copy()
        if nz.focal_noise > 0:
            f = 1.0 + nz.focal_noise * rng.standard_normal()
            K[0, 0] *= f
            K[1, 1] *= f
        med = float(np.median(depths[0]))

        depth_out = np.empty((n, h, w), np.float32)
        conf_out = np.empty((n, h, w), np.float32)
        E_out = np.empty((n, 3, 4), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for v in range(n):
            d = depths[v]
            if (h, w) != (H, W):
                d = cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST)
            logit = 2.0 + 0.3 * _smooth_field(rng, h, w, 6)
            err = (nz.depth_warp * _smooth_field(rng, h, w, 4)
                   + nz.depth_noise * rng.standard_normal((h, w)).astype(np.float32))
            for _ in range(nz.low_conf_blobs):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                r = rng.uniform(0.08, 0.18) * max(h, w)
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (r * r))
                bad = blob > 0.5
                err = np.where(bad, err + nz.low_conf_error * float(rng.choice([-1.0, 1.0])) * blob, err)
                logit = np.where(bad, logit - 3.0 * blob, logit)
            if garbage:
                d = med * np.exp(0.5 * _smooth_field(rng, h, w, 3))
                err = np.zeros_like(err)
            depth_out[v] = (scale * d * np.maximum(1.0 + err, 0.05)).astype(np.float32)
            conf_out[v] = (1.0 + np.exp(logit)).astype(np.float32)
            # pose of view v in the reference frame (camera-to-window), in metres until scaled below
            T_ref_v = T_ref_views[v]
            if v != ref and nz.yaw_bias_deg_per_m:
                turn = rotation_from_axis_angle([0.0, np.radians(nz.yaw_bias_deg_per_m)
                                                 * float(np.linalg.norm(T_ref_v[:3, 3])), 0.0])
                T_ref_v = T_ref_v.copy()
                T_ref_v[:3, :3] = turn @ T_ref_v[:3, :3]
            if v != ref:
                if garbage:
                    dR = rotation_from_axis_angle(rng.normal(size=3) * np.radians(20.0))
                    dt = rng.normal(size=3) * 0.5 * med
                else:
                    dR = rotation_from_axis_angle(rng.normal(size=3) * np.radians(nz.rotation_noise_deg))
                    dt = rng.normal(size=3) * nz.translation_noise * med
                T_ref_v = T_ref_v.copy()
                T_ref_v[:3, :3] = dR @ T_ref_v[:3, :3]
                T_ref_v[:3, 3] = T_ref_v[:3, 3] + dt
            else:
                T_ref_v = np.eye(4)
            T_ref_v[:3, 3] *= scale
            E_out[v] = T_world_cam_to_extrinsics(T_ref_v).astype(np.float32)
        return OracleWindow(
            depth=depth_out,
            depth_conf=conf_out,
            extrinsics=E_out,
            intrinsics=np.repeat(K[None].astype(np.float32), n, axis=0),
            frame_ids=ids,
            ref_index=ref,
            scale=scale,
            T_world_ref=T_world_ref.copy(),
            garbage=bool(garbage),
        )
