"""``SyntheticSequence``: scene + camera path + intrinsics, rendered lazily and cached per frame.

Each frame gives RGB uint8 (H, W, 3), metric depth float32 (H, W) (z along the optical axis,
metres), the pinhole ``K`` (3x3, pixels, OpenCV pixel-centre convention), the camera-to-world
pose ``T_world_cam`` (4x4) and a timestamp in seconds. Deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np

from .camera_paths import CameraPath, camera_path
from .renderer import Renderer, pinhole_intrinsics
from .room_scene import MirroredCopy, RoomScene, default_room

__all__ = ["SyntheticSequence", "SyntheticFrame"]


@dataclass
class SyntheticFrame:
    index: int
    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray


class SyntheticSequence:
    """A rendered camera path through a synthetic room (default: ``room_tour``, 320x240, 300 frames)."""

    def __init__(
        self,
        path: Union[str, CameraPath] = "room_tour",
        width: int = 320,
        height: int = 240,
        hfov_deg: float = 70.0,
        seed: int = 0,
        path_scale: float = 1.0,
        scene: Optional[RoomScene] = None,
        cache: bool = True,
        mirrored_copy: Optional[MirroredCopy] = None,
    ):
        self.scene = scene if scene is not None else default_room(texture_seed=seed)
        # a named path, or a ready CameraPath (e.g. ``SyntheticRobot.camera_path()``; path_scale unused)
        self.path: CameraPath = path if isinstance(path, CameraPath) else camera_path(path, path_scale)
        self.width = int(width)
        self.height = int(height)
        self.K = pinhole_intrinsics(self.width, self.height, hfov_deg)
        self.renderer = Renderer(self.scene)
        self.mirrored_copy = mirrored_copy   # frames whose camera is inside it render the room's mirror image
        self._cache: Optional[Dict[int, Tuple[np.ndarray, np.ndarray]]] = {} if cache else None

    def __len__(self) -> int:
        return len(self.path)

    @property
    def T_world_cam(self) -> np.ndarray:
        """(F, 4, 4) ground-truth camera-to-world poses."""
        return self.path.T_world_cam

    @property
    def stamps(self) -> np.ndarray:
        return self.path.stamps

    def render(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(rgb, depth)`` of frame ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} out of range [0, {len(self)})")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        T = self.path.T_world_cam[index]
        copy = self.mirrored_copy
        if copy is not None and copy.contains(self.scene, T[:3, 3]):
            rgb, depth = self.renderer.render(self.K, copy.to_room(T), self.width, self.height)
            out = (np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(depth[:, ::-1]))
        else:
            out = self.renderer.render(self.K, T, self.width, self.height)
        if self._cache is not None:
            self._cache[index] = out
        return out

    def frame(self, index: int) -> SyntheticFrame:
        rgb, depth = self.render(index)
        return SyntheticFrame(index, float(self.stamps[index]), rgb, depth, self.K.copy(),
                              self.path.T_world_cam[index].copy())

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)
