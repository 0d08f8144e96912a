"""A bounded, voxel-downsampled map of keyframe points in the odometry frame (ROS-free).

Each keyframe contributes its valid points (odometry frame) downsampled to one point per voxel.
The fused map keeps one point per voxel over all keyframes (the newest keyframe wins) and drops
the oldest keyframes when it would exceed ``max_points``. When the keyframes stored add up to more
than twice ``max_points`` (a camera revisiting the same place), they are collapsed into the fused
map, so memory stays bounded however long the node runs.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np


def voxel_downsample(points: np.ndarray, colours: np.ndarray | None, voxel: float):
    """Keep the first point of every voxel. points (M, 3) finite float32."""
    if points.shape[0] == 0:
        return points, colours
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    first.sort()
    return points[first], (colours[first] if colours is not None else None)


class VoxelMap:
    def __init__(self, voxel_size: float = 0.05, max_points: int = 200_000):
        if voxel_size <= 0:
            raise ValueError(f"map voxel size must be > 0, got {voxel_size}")
        if max_points < 1:
            raise ValueError(f"map max points must be >= 1, got {max_points}")
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self._keyframes: OrderedDict[object, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._fused = None

    def __len__(self) -> int:
        return 0 if self._fused is None else int(self._fused[0].shape[0])

    def clear(self) -> None:
        self._keyframes.clear()
        self._fused = None

    def add_keyframe(self, key, points_odom: np.ndarray, colours: np.ndarray | None) -> None:
        """points_odom (..., 3) with NaN for invalid points; colours (..., 3) uint8 or None."""
        pts = points_odom.reshape(-1, 3)
        valid = np.isfinite(pts).all(axis=1)
        cols = colours.reshape(-1, 3)[valid] if colours is not None else None
        self._keyframes[key] = voxel_downsample(pts[valid].astype(np.float32), cols, self.voxel_size)
        self._fused = None

    def points(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused (M, 3) float32 points and (M, 3) uint8 colours (or None), M <= max_points."""
        if self._fused is None:
            while True:
                parts = list(self._keyframes.values())[::-1]   # newest first: newest wins per voxel
                if not parts:
                    self._fused = (np.zeros((0, 3), np.float32), None)
                    break
                pts = np.concatenate([p for p, _ in parts])
                has_col = all(c is not None for _, c in parts)
                cols = np.concatenate([c for _, c in parts]) if has_col else None
                pts, cols = voxel_downsample(pts, cols, self.voxel_size)
                if pts.shape[0] <= self.max_points or len(self._keyframes) == 1:
                    self._fused = (pts[: self.max_points], cols[: self.max_points] if cols is not None else None)
                    stored = sum(p.shape[0] for p, _ in self._keyframes.values())
                    if stored > 2 * self.max_points:   # revisited areas: keep memory bounded
                        self._keyframes = OrderedDict([("fused", self._fused)])
                    break
                self._keyframes.popitem(last=False)   # drop the oldest keyframe and refuse
        return self._fused
