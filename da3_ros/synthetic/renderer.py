"""Vectorised NumPy/OpenCV ray caster for ``RoomScene``: RGB uint8 + metric depth per camera.

Conventions:
- ``K`` is a 3x3 pinhole matrix in pixels, OpenCV pixel-centre convention: the centre of pixel
  (row i, column j) has image coordinates (u, v) = (j, i).
- ``T_world_cam`` is camera-to-world (4x4 SE(3)), OpenCV optical axes (x right, y down, z forward).
- Depth is the z-distance along the optical axis in metres (float32), not the ray length.
- Shading: per-surface tint x seeded multi-octave colour noise texture x a point light with
  Lambert falloff, so a real network sees texture, edges and smooth shading.

One 320x240 frame costs a few milliseconds; 300 frames render in a few seconds on one core.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import cv2
import numpy as np

from ..geometry.camera import PinholeCamera
from .room_scene import RoomScene

__all__ = ["Renderer", "pinhole_intrinsics"]


def pinhole_intrinsics(width: int, height: int, hfov_deg: float = 70.0) -> np.ndarray:
    """Square-pixel pinhole K with the principal point at the image centre ((W-1)/2, (H-1)/2)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 1.0 < hfov_deg < 179.0:
        raise ValueError(f"hfov_deg must be in (1, 179), got {hfov_deg}")
    return PinholeCamera.centred(int(width), int(height), hfov_deg).K.copy()


def _noise_texture(seed: int, size: int = 512) -> np.ndarray:
    """Seeded multi-octave RGB value noise in [0, 1], float32 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    tex = np.zeros((size, size, 3), np.float32)
    amp_total = 0.0
    for cells, amp in ((4, 1.0), (16, 0.7), (64, 0.5), (256, 0.35)):
        layer = rng.random((cells, cells, 3)).astype(np.float32)
        tex += amp * cv2.resize(layer, (size, size), interpolation=cv2.INTER_CUBIC)
        amp_total += amp
    tex /= amp_total
    tex = 0.55 * tex.mean(axis=2, keepdims=True) + 0.45 * tex  # partly desaturated
    lo, hi = np.percentile(tex, [1, 99])
    return np.clip((tex - lo) / (hi - lo), 0.0, 1.0)


@lru_cache(maxsize=8)
def _camera_rays(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """(H*W, 3) camera-frame ray directions with z = 1 (so the ray parameter equals depth)."""
    d = PinholeCamera.from_focal(width, height, fx, fy, cx, cy).ray_grid(dtype=np.float64).reshape(-1, 3)
    d.setflags(write=False)
    return d


class Renderer:
    """Renders a ``RoomScene``. Create once per scene (the texture is built in the constructor)."""

    def __init__(self, scene: RoomScene):
        self.scene = scene
        self.texture = _noise_texture(scene.texture_seed)
        self._tints = scene.tints
        self._room_lo = np.asarray(scene.room.lo, np.float64)
        self._room_hi = np.asarray(scene.room.hi, np.float64)
        self._box_lo = np.array([b.lo for b in scene.boxes], np.float64).reshape(-1, 3)
        self._box_hi = np.array([b.hi for b in scene.boxes], np.float64).reshape(-1, 3)

    def render(self, K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
        """Render one view. Returns ``(rgb (H, W, 3) uint8, depth (H, W) float32 metres)``."""
        K = np.asarray(K, np.float64)
        T = np.asarray(T_world_cam, np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K must be 3x3, got shape {K.shape}")
        if T.shape != (4, 4):
            raise ValueError(f"T_world_cam must be 4x4, got shape {T.shape}")
        origin = T[:3, 3]
        if not self.scene.is_free(origin, margin=0.0):
            raise ValueError(f"camera centre {origin.tolist()} is outside the room or inside a box")
        rays_cam = _camera_rays(K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(width), int(height))
        d = (rays_cam @ T[:3, :3].T).astype(np.float32)  # world directions, parameter t == depth
        o = origin.astype(np.float32)
        # Per-axis component arrays; zero components are nudged so that 1/d stays finite.
        comps = [np.ascontiguousarray(d[:, a]) for a in range(3)]
        inv = []
        for c in comps:
            c[np.abs(c) < 1e-12] = 1e-12
            inv.append(np.float32(1.0) / c)
        n_pix = len(d)
        # Room interior: exit distance per axis; the smallest one is the wall that is hit.
        t_hit = np.full(n_pix, np.inf, np.float32)
        axis = np.zeros(n_pix, np.int8)
        surface = np.zeros(n_pix, np.int16)
        for a in range(3):
            pos = comps[a] > 0
            t_a = (np.where(pos, np.float32(self._room_hi[a] - o[a]), np.float32(self._room_lo[a] - o[a]))) * inv[a]
            closer = t_a < t_hit
            t_hit = np.where(closer, t_a, t_hit)
            axis[closer] = a
            surface[closer] = 2 * a + pos[closer]
        # Solid boxes: slab test, nearest entry in front of the camera wins.
        for b in range(len(self._box_lo)):
            t_enter = None
            for a in range(3):
                t1 = np.float32(self._box_lo[b, a] - o[a]) * inv[a]
                t2 = np.float32(self._box_hi[b, a] - o[a]) * inv[a]
                tmin = np.minimum(t1, t2)
                tmax = np.maximum(t1, t2)
                if t_enter is None:
                    t_enter, t_exit, enter_axis = tmin, tmax, np.zeros(n_pix, np.int8)
                else:
                    later = tmin > t_enter
                    t_enter = np.where(later, tmin, t_enter)
                    enter_axis[later] = a
                    np.minimum(t_exit, tmax, out=t_exit)
            hit = (t_enter <= t_exit) & (t_enter > 1e-6) & (t_enter < t_hit)
            if np.any(hit):
                t_hit = np.where(hit, t_enter, t_hit)
                axis = np.where(hit, enter_axis, axis)
                surface[hit] = 6 + b
        p = [o[a] + comps[a] * t_hit for a in range(3)]
        # Surface texture coordinates: the two world coordinates other than the normal axis,
        # offset per surface so that surfaces do not share texture.
        sf = surface.astype(np.float32)
        u = np.where(axis == 0, p[1], p[0]) + np.float32(1.37) * sf
        v = np.where(axis == 2, p[1], p[2]) + np.float32(2.11) * sf
        ppm = np.float32(self.scene.pixels_per_metre)
        size = np.float32(self.texture.shape[0])
        map_x = np.mod(u * ppm, size).reshape(height, width)
        map_y = np.mod(v * ppm, size).reshape(height, width)
        tex = cv2.remap(self.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        tex = tex.reshape(n_pix, 3)
        # Floor tiles: dark grout lines every 0.5 m.
        floor = surface == 4
        grout = floor & ((np.abs(np.mod(p[0], 0.5) - 0.25) > 0.24) | (np.abs(np.mod(p[1], 0.5) - 0.25) > 0.24))
        # Lambert shading from a point light; the normal faces the camera along the hit axis.
        to_light = [np.float32(self.scene.light[a]) - p[a] for a in range(3)]
        dist2 = to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2
        d_axis = np.where(axis == 0, comps[0], np.where(axis == 1, comps[1], comps[2]))
        l_axis = np.where(axis == 0, to_light[0], np.where(axis == 1, to_light[1], to_light[2]))
        lambert = np.maximum(0.0, -np.sign(d_axis) * l_axis / np.sqrt(dist2 + 1e-12))
        shade = (0.45 + 0.75 * lambert * (9.0 / (9.0 + dist2))) * np.where(grout, 0.35, 1.0)
        rgb = self._tints[surface] * (0.25 + 0.75 * tex) * shade[:, None].astype(np.float32)
        rgb = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(height, width, 3)
        depth = t_hit.reshape(height, width)
        return rgb, depth
