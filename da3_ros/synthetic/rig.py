"""A multi-camera rig in the synthetic room: rig definition, presets, per-camera rendering and stamps.

Frames and conventions:
- ``base``: REP 103 body frame of the rig (x forward, y left, z up), metres.
- Each camera has ``T_base_cam`` (camera-to-base, 4x4) of its OpenCV optical frame (x right, y down,
  z forward), as TF would give ``base_link -> <cam>_optical_frame``.
- The rig moves along a named ``camera_paths`` path: the path's camera pose is taken as the pose of
  the base with optical axes, i.e. ``T_world_base = T_world_path @ inv(R_BASE_OPTICAL)``, so a camera
  with ``T_base_cam = R_BASE_OPTICAL`` (forward-looking, at the base origin) follows the path exactly,
  and every camera's ground truth is ``T_world_cam = T_world_base @ T_base_cam``.

Presets:
- ``stereo_pair(baseline=0.12)``: ``left`` at y = +b/2 and ``right`` at y = -b/2, both looking forward,
  70 deg horizontal FOV (the single-camera default);
- ``ring(num_cameras=3)``: cameras 120 deg apart in yaw (``cam0`` forward, then to the left), 0.10 m
  from the base origin, with a 150 deg horizontal FOV so that neighbours overlap by 30 deg
  (pinhole; at 320x240 the vertical FOV is then ~140 deg).

Stamps: camera ``c`` renders path frames ``0, d, 2d, ...`` (``rate_divisors[c] = d``; 2 = half rate) at
stamp ``t_frame + jitter`` with a seeded uniform jitter in ``[-stamp_jitter_s, +stamp_jitter_s]``. The
image is rendered at the frame's nominal pose: jitter models trigger/stamp noise only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from da3_ros.geometry.transforms import invert_transform, rotation_from_axis_angle

from .camera_paths import CameraPath, camera_path
from .renderer import Renderer, pinhole_intrinsics
from .room_scene import RoomScene, default_room
from .sequence import SyntheticFrame

__all__ = ["R_BASE_OPTICAL", "RigCamera", "CameraRig", "RigSequence", "stereo_pair", "ring", "optical_mount"]

# columns: optical x (right), y (down), z (forward) expressed in REP 103 base axes
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def optical_mount(position, yaw_deg: float = 0.0) -> np.ndarray:
    """``T_base_cam`` of an optical frame at ``position`` (base, metres) looking along base yaw ``yaw_deg``
    (0 = forward +x, positive turns left towards +y), level with the base xy-plane."""
    T = np.eye(4)
    T[:3, :3] = rotation_from_axis_angle([0.0, 0.0, np.radians(yaw_deg)]) @ R_BASE_OPTICAL
    T[:3, 3] = np.asarray(position, np.float64)
    return T


@dataclass(frozen=True)
class RigCamera:
    """One camera of a rig: its name (namespace), ``T_base_cam`` (4x4, metres) and horizontal FOV."""

    name: str
    T_base_cam: np.ndarray
    hfov_deg: float = 70.0


@dataclass(frozen=True)
class CameraRig:
    """Named cameras with known extrinsics ``T_base_cam``; names are unique."""

    cameras: Tuple[RigCamera, ...]

    def __post_init__(self):
        names = [c.name for c in self.cameras]
        if not names:
            raise ValueError("a rig needs at least one camera")
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        for c in self.cameras:
            T = np.asarray(c.T_base_cam, np.float64)
            if T.shape != (4, 4) or not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9) \
                    or not np.allclose(T[3], [0, 0, 0, 1]):
                raise ValueError(f"T_base_cam of {c.name!r} must be a rigid 4x4 transform")

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.cameras]

    @property
    def T_base_cam(self) -> np.ndarray:
        """(C, 4, 4) camera-to-base extrinsics, in camera order."""
        return np.stack([np.asarray(c.T_base_cam, np.float64) for c in self.cameras])

    def T_cam_cam(self, a: int, b: int) -> np.ndarray:
        """``T_cam<a>_cam<b>``: maps camera ``b`` coordinates into camera ``a``."""
        T = self.T_base_cam
        return invert_transform(T[a]) @ T[b]


def stereo_pair(baseline: float = 0.12, hfov_deg: float = 70.0) -> CameraRig:
    """``left`` / ``right`` forward-looking cameras ``baseline`` metres apart along base y."""
    if not baseline > 0:
        raise ValueError(f"baseline must be > 0, got {baseline}")
    return CameraRig((RigCamera("left", optical_mount([0.0, baseline / 2, 0.0]), hfov_deg),
                      RigCamera("right", optical_mount([0.0, -baseline / 2, 0.0]), hfov_deg)))


def ring(num_cameras: int = 3, radius: float = 0.10, hfov_deg: float = 150.0) -> CameraRig:
    """``cam0..`` looking outwards, ``360 / num_cameras`` deg apart in yaw, ``radius`` m from the base origin.

    Neighbours overlap by ``hfov_deg - 360 / num_cameras`` degrees (30 deg for the 3-camera default).
    """
    if num_cameras < 2:
        raise ValueError(f"a ring needs >= 2 cameras, got {num_cameras}")
    cams = []
    for i in range(num_cameras):
        yaw = 360.0 * i / num_cameras
        pos = radius * np.array([np.cos(np.radians(yaw)), np.sin(np.radians(yaw)), 0.0])
        cams.append(RigCamera(f"cam{i}", optical_mount(pos, yaw), hfov_deg))
    return CameraRig(tuple(cams))


class RigSequence:
    """A rig moving along a camera path through a synthetic room; every camera rendered lazily.

    Args:
        rig: the rig; path, path_scale, width, height, seed, scene: as in ``SyntheticSequence``.
        stamp_jitter_s: half-width of the uniform stamp jitter per camera frame (seconds).
        rate_divisors: per camera, render every d-th path frame (default 1 for every camera).
    """

    def __init__(self, rig: CameraRig, path: str = "room_tour", width: int = 320, height: int = 240,
                 seed: int = 0, path_scale: float = 1.0, scene: Optional[RoomScene] = None,
                 stamp_jitter_s: float = 0.0, rate_divisors: Optional[Sequence[int]] = None, cache: bool = True):
        self.rig = rig
        self.scene = scene if scene is not None else default_room(texture_seed=seed)
        self.path: CameraPath = camera_path(path, path_scale)
        self.width, self.height = int(width), int(height)
        self.K = np.stack([pinhole_intrinsics(self.width, self.height, c.hfov_deg) for c in rig.cameras])
        self.renderer = Renderer(self.scene)
        if not stamp_jitter_s >= 0:
            raise ValueError(f"stamp_jitter_s must be >= 0, got {stamp_jitter_s}")
        divs = [1] * len(rig) if rate_divisors is None else [int(d) for d in rate_divisors]
        if len(divs) != len(rig) or any(d < 1 for d in divs):
            raise ValueError(f"rate_divisors needs {len(rig)} integers >= 1, got {rate_divisors}")
        self.rate_divisors = divs
        self.T_world_base = self.path.T_world_cam @ invert_transform(optical_mount([0.0, 0.0, 0.0]))
        rng = np.random.default_rng(seed + 7919)
        t_ns = np.round(self.path.stamps * 1e9).astype(np.int64)
        jitter = rng.uniform(-stamp_jitter_s, stamp_jitter_s, size=(len(rig), len(self.path)))
        self._stamps_ns = np.maximum(t_ns[None, :] + np.round(jitter * 1e9).astype(np.int64), 0)  # stamps >= 0
        self._cache: Optional[Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]]] = {} if cache else None

    def __len__(self) -> int:
        """Number of rig poses (path frames)."""
        return len(self.path)

    @property
    def T_world_cam(self) -> np.ndarray:
        """(F, C, 4, 4) ground-truth camera-to-world pose of every camera at every rig pose."""
        return np.einsum("fij,cjk->fcik", self.T_world_base, self.rig.T_base_cam)

    def frame_indices(self, camera: int) -> np.ndarray:
        """Path frames that camera ``camera`` renders (every ``rate_divisors[camera]``-th)."""
        return np.arange(0, len(self), self.rate_divisors[camera])

    def stamp_ns(self, camera: int, index: int) -> int:
        return int(self._stamps_ns[camera, index])

    def render(self, camera: int, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(rgb (H, W, 3) uint8, depth (H, W) float32 metres)`` of ``camera`` at rig pose ``index``."""
        if not 0 <= camera < len(self.rig):
            raise IndexError(f"camera index {camera} out of range [0, {len(self.rig)})")
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} out of range [0, {len(self)})")
        key = (camera, index)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        T = self.T_world_base[index] @ self.rig.T_base_cam[camera]
        out = self.renderer.render(self.K[camera], T, self.width, self.height)
        if self._cache is not None:
            self._cache[key] = out
        return out

    def frame(self, camera: int, index: int) -> SyntheticFrame:
        """One camera frame; ``stamp`` in seconds (with jitter), ``T_world_cam`` ground truth."""
        rgb, depth = self.render(camera, index)
        T = self.T_world_base[index] @ self.rig.T_base_cam[camera]
        return SyntheticFrame(index, self.stamp_ns(camera, index) * 1e-9, rgb, depth, self.K[camera].copy(), T)

    def arrivals(self) -> List[Tuple[int, int, int]]:
        """``(camera_index, stamp_ns, frame_index)`` of every camera frame, ordered by stamp (ties by camera):
        the stream a synchroniser would receive from ideal transport."""
        items = [(c, self.stamp_ns(c, int(i)), int(i)) for c in range(len(self.rig)) for i in self.frame_indices(c)]
        return sorted(items, key=lambda x: (x[1], x[0]))
