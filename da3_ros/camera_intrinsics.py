"""Pinhole camera intrinsics as a small ROS-free value type.

Conventions: pixel coordinates (u = column, v = row), the centre of the top-left pixel is (0, 0)
(as in ROS CameraInfo / OpenCV). ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Intrinsics of an image of ``width`` x ``height`` pixels.

    ``distortion_model`` and ``distortion`` follow sensor_msgs/CameraInfo (``plumb_bob``,
    ``rational_polynomial``, ``equidistant``; empty = none). ``K`` is float64 (3, 3).
    """

    width: int
    height: int
    K: np.ndarray
    distortion_model: str = ""
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def is_distorted(self) -> bool:
        return self.distortion.size > 0 and bool(np.any(self.distortion != 0.0))

    def scaled_to(self, width: int, height: int) -> "CameraIntrinsics":
        """The same camera seen through a resize of the whole image to ``width`` x ``height``.

        Uses the pixel-edge convention of cv2.resize: ``u' = (u + 0.5) * sx - 0.5``.
        """
        sx = width / self.width
        sy = height / self.height
        K = self.K.astype(np.float64).copy()
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return CameraIntrinsics(width, height, K, self.distortion_model, self.distortion.copy())

    @staticmethod
    def from_focal(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> "CameraIntrinsics":
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
        return CameraIntrinsics(int(width), int(height), K)
