"""Test helper: the synthetic room seen through real lenses (plumb_bob k1 = -0.3, an equidistant fisheye).

The pinhole world is ``SyntheticSequence(width=320, height=240)`` (room_tour, 70 deg horizontal field of view,
camera ``K_P``). A raw camera of the same pose has its own K and a distortion model; its camera_info's P is
``K_P`` (a monocular calibration rectified into the pinhole world's camera). A raw image is rendered honestly:
the room is ray-cast by a wide pinhole camera (``WIDE_HFOV_DEG``, 3x the pixels) and every raw pixel takes the
colour and z-depth of the wide image at its undistorted ray (``RawCamera.rectify_points`` into the wide camera,
the iterative inverse of the distortion model; bilinear colour, nearest depth). R = I, so the raw and the
rectified camera share the optical frame and the z-depth of a ray is the same in both.

``RawWorldSequence`` is that raw world as a sequence (``render(i) -> (raw rgb, raw depth)``, ``K`` the raw K,
``T_world_cam``): what a perfect network sees and answers for a raw image. ``world_oracle_backend`` is the
oracle backend over such a world (the oracle over the pinhole world is the ordinary ``OracleBackend``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import cv2
import numpy as np

from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec
from da3_ros.camera_models import RawCamera
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle

W, H = 320, 240
WIDE_HFOV_DEG = 130.0
WIDE_FACTOR = 3
EYE = np.eye(3).ravel().tolist()


def pinhole_world() -> SyntheticSequence:
    """The pinhole world (the oracle backend's own sequence for a room_tour spec of 320x240)."""
    return SyntheticSequence(width=W, height=H)


def raw_cameras(K_P: np.ndarray) -> Dict[str, RawCamera]:
    """The two lenses, each calibrated into the pinhole camera ``K_P`` (P = [K_P | 0])."""
    P = np.hstack([K_P, np.zeros((3, 1))]).ravel().tolist()
    barrel = [230.0, 0.0, 160.3, 0.0, 231.0, 119.1, 0.0, 0.0, 1.0]          # ~69 deg across, k1 = -0.3
    fisheye = [200.0, 0.0, 159.2, 0.0, 200.5, 120.4, 0.0, 0.0, 1.0]         # ~92 deg across
    return {"plumb_bob": RawCamera.from_fields(W, H, "plumb_bob", [-0.3, 0.09, 0.001, -0.0005, 0.0], barrel, EYE, P),
            "equidistant": RawCamera.from_fields(W, H, "equidistant", [0.05, -0.01, 0.002, -0.0005], fisheye, EYE, P)}


class RawWorldSequence:
    """The pinhole world's path seen by ``raw`` (see the module docstring)."""

    def __init__(self, world: SyntheticSequence, raw: RawCamera):
        self.world, self.raw = world, raw
        self.K = raw.K.copy()
        self.wide = PinholeCamera.centred(W * WIDE_FACTOR, H * WIDE_FACTOR, WIDE_HFOV_DEG)
        # where every raw pixel looks: its undistorted ray in the wide camera (pixel-centre coordinates)
        lookup = RawCamera(W, H, raw.distortion_model, raw.D, raw.K, np.eye(3),
                           np.hstack([self.wide.K, np.zeros((3, 1))]))
        v, u = np.mgrid[0:H, 0:W].astype(np.float64)
        uv = lookup.rectify_points(np.stack([u.ravel(), v.ravel()], axis=1))
        self.map_x = uv[:, 0].reshape(H, W).astype(np.float32)
        self.map_y = uv[:, 1].reshape(H, W).astype(np.float32)
        assert self.map_x.min() > 0 and self.map_x.max() < self.wide.width - 1   # the wide view covers the lens
        assert self.map_y.min() > 0 and self.map_y.max() < self.wide.height - 1
        self.rays = self.wide.rays(self.map_x, self.map_y)   # (H, W, 3), z = 1: the true ray of each raw pixel
        self._cache: dict = {}

    @property
    def T_world_cam(self) -> np.ndarray:
        return self.world.T_world_cam

    def __len__(self) -> int:
        return len(self.world)

    def render(self, index: int):
        """``(raw rgb uint8 (H, W, 3), raw z-depth float32 (H, W))`` of frame ``index``."""
        if index not in self._cache:
            rgb, depth = self.world.renderer.render(self.wide.K, self.world.T_world_cam[index], self.wide.width,
                                                    self.wide.height)
            self._cache[index] = (cv2.remap(rgb, self.map_x, self.map_y, cv2.INTER_LINEAR),
                                  cv2.remap(depth, self.map_x, self.map_y, cv2.INTER_NEAREST))
        return self._cache[index]


class WorldOracleBackend(OracleBackend):
    """The oracle backend (ground truth + the oracle's noise) over a given world instead of the spec's named path:
    the perfect network for a raw camera's images."""

    def __init__(self, spec_path: str, world, views: int = 1):
        super().__init__(spec_path, views=views, height=H, width=W)
        self.sequence = world
        self.oracle = WindowOracle(world, OracleNoise(), seed=0)


def oracle_backend(tmp_path: Path, name: str, images: Dict[int, np.ndarray], world=None, views: int = 1):
    """An oracle backend that knows ``images`` ({frame index: network input}) over the pinhole world (``world``
    None) or over ``world``."""
    spec = write_oracle_spec(tmp_path / f"{name}.json", images, width=W, height=H, views=views)
    return OracleBackend(str(spec), views=views, height=H, width=W) if world is None else \
        WorldOracleBackend(str(spec), world, views)
