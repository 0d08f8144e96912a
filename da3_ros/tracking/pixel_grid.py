"""Fixed strided pixel grid used to subsample dense depth maps into 3D correspondences.

Pixel convention: the project's one (``da3_ros.geometry.camera``): the centre of pixel (row i,
column j) is at image coordinates (u, v) = (j, i), as in ROS/OpenCV. Unprojection is
:meth:`PinholeCamera.rays` times z (camera optical frame: x right, y down, z forward), so the
intrinsics must already be in that convention (``WindowProcessor`` converts the model's DA3-convention
intrinsics once, with :meth:`PinholeCamera.from_da3_intrinsics`).
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry.camera import PinholeCamera

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
        """Camera-frame points (..., M, 3) from grid depths (..., M) and pixel-centre intrinsics
        (..., 3, 3) of this grid's image (raises ``InvalidCameraError`` for an unusable K)."""
        K = np.asarray(K, np.float64)
        z = np.asarray(depth, np.float64)
        lead = np.broadcast_shapes(K.shape[:-2], z.shape[:-1])
        Ks = np.broadcast_to(K, lead + (3, 3)).reshape(-1, 3, 3)
        zs = np.broadcast_to(z, lead + (len(self),)).reshape(-1, len(self))
        pts = [PinholeCamera(self.width, self.height, k).rays(self._u, self._v) * zk[:, None]
               for k, zk in zip(Ks, zs)]
        return np.stack(pts).reshape(lead + (len(self), 3))
