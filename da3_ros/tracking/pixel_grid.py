"""Fixed strided pixel grid used to subsample dense depth maps into 3D correspondences.

Pixel convention: OpenCV, the centre of pixel (row i, column j) is at image coordinates
(u, v) = (j, i). Unprojection: ``X = (u - cx) / fx * z``, ``Y = (v - cy) / fy * z``, ``Z = z``
(camera optical frame: x right, y down, z forward).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["PixelGrid"]


class PixelGrid:
    """A regular grid of about ``max_points`` pixels over an ``height`` x ``width`` image.

    The grid is offset by half a stride so that it is centred in the image. ``rows``/``cols`` are
    flat index arrays (M,) usable as ``image[rows, cols]``.
    """

    def __init__(self, height: int, width: int, max_points: int = 1200):
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        if max_points < 3:
            raise ValueError(f"max_points must be >= 3, got {max_points}")
        self.height = int(height)
        self.width = int(width)
        stride = max(1, int(math.ceil(math.sqrt(height * width / float(max_points)))))
        self.stride = stride
        r = np.arange(stride // 2, height, stride)
        c = np.arange(stride // 2, width, stride)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        self.rows = rr.reshape(-1)
        self.cols = cc.reshape(-1)
        self._u = self.cols.astype(np.float64)
        self._v = self.rows.astype(np.float64)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def sample(self, images: np.ndarray) -> np.ndarray:
        """Values at the grid of images (..., H, W) -> (..., M)."""
        return images[..., self.rows, self.cols]

    def unproject(self, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., M, 3) from grid depths (..., M) and intrinsics (..., 3, 3)."""
        K = np.asarray(K, np.float64)
        z = np.asarray(depth, np.float64)
        fx = K[..., 0, 0, None]
        fy = K[..., 1, 1, None]
        cx = K[..., 0, 2, None]
        cy = K[..., 1, 2, None]
        return np.stack([(self._u - cx) / fx * z, (self._v - cy) / fy * z, z], axis=-1)
