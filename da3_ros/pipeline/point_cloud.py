"""Organized point clouds from a depth map at camera resolution (camera optical frame).

``X = depth(v, u) * K^-1 [u, v, 1]^T`` with u = column, v = row, i.e. :meth:`PinholeCamera.ray_grid`
(pixel centres at integers, the ROS/OpenCV convention of camera_info and depth_image_proc). The ray
grid for a given (camera, stride) is computed once and cached, so a cloud costs one multiply per point.
Rejected points (non-finite depth, depth outside [min_depth, max_depth], confidence below the
threshold) are NaN in x, y and z.
"""
from __future__ import annotations

import numpy as np

from ..geometry.camera import PinholeCamera


class OrganizedCloudBuilder:
    def __init__(self, stride: int = 1, min_depth: float = 0.0, max_depth: float = float("inf"),
                 confidence_threshold: float = 0.0):
        if int(stride) < 1:
            raise ValueError(f"point stride must be >= 1, got {stride}")
        if not (0.0 <= min_depth < max_depth):
            raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")
        self.stride = int(stride)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.confidence_threshold = float(confidence_threshold)
        self._rays_key = None
        self._rays = None

    def rays(self, camera: PinholeCamera) -> np.ndarray:
        """(h', w', 3) float32 rays K^-1 [u, v, 1] on the strided pixel grid (cached)."""
        key = (camera.K.tobytes(), camera.width, camera.height, self.stride)
        if key != self._rays_key:
            self._rays, self._rays_key = camera.ray_grid(self.stride, np.float32), key
        return self._rays

    def valid_mask(self, depth: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            valid = (depth >= self.min_depth) & (depth <= self.max_depth) & (depth > 0)
            if confidence is not None and self.confidence_threshold > 0:
                valid &= confidence >= self.confidence_threshold
        return valid  # NaN compares False, so non-finite depth is rejected too

    def build(self, depth: np.ndarray, camera: PinholeCamera, rgb: np.ndarray | None = None,
              confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
        """depth (h, w) of ``camera``'s image -> (xyz (h', w', 3) float32 camera optical frame with NaN for
        rejected points, rgb (h', w', 3) or None, n_valid)."""
        if depth.shape != (camera.height, camera.width):
            raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the camera is "
                             f"{camera.width}x{camera.height}")
        s = self.stride
        d = depth[::s, ::s]
        conf = confidence[::s, ::s] if confidence is not None else None
        valid = self.valid_mask(d, conf)
        xyz = self.rays(camera) * d[..., None]
        xyz[~valid] = np.nan
        colours = np.ascontiguousarray(rgb[::s, ::s]) if rgb is not None else None
        return xyz, colours, int(np.count_nonzero(valid))
