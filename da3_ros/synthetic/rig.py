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
  70 deg horizontal FOV (the single-camera default); ``yaw_deg`` turns the whole pair about the base z axis
  (-90: a pair looking to the right, its baseline along the direction of travel, so a stamp offset between
  its cameras moves one camera along the baseline: the worst case for an unsynchronised pair);
- ``ring(num_cameras=3)``: cameras 120 deg apart in yaw (``cam0`` forward, then to the left), 0.10 m
  from the base origin, with a 150 deg horizontal FOV so that neighbours overlap by 30 deg
  (pinhole; at 320x240 the vertical FOV is then ~140 deg).

``rig_preset(name)`` builds a preset by name (``RIG_PRESETS``: ``"stereo"``, ``"ring"``); ``RigWorld`` is
everything that rebuilds the identical rendered world (preset and its size, path, path scale, seed) as a
JSON-able record (the oracle spec's ``"rig"`` entry, the rig world publisher's arguments).

Stamps: camera ``c`` renders path frames ``0, d, 2d, ...`` (``rate_divisors[c] = d``; 2 = half rate) at
stamp ``t_frame + c * camera_offset_s + jitter`` with a seeded uniform jitter in ``[-stamp_jitter_s,
+stamp_jitter_s]``. ``camera_offset_s`` models unsynchronised cameras: camera ``c`` captures ``c x
camera_offset_s`` after the rig frame's time, and its image is rendered at the base pose of that instant
(``T_world_base_at``, extrapolated along the last path segment past the end), so its ground truth
``T_world_cam`` is the pose at its own capture time; jitter models trigger/stamp noise only (the image stays at
the capture pose).
``RigSequence.T_world_base_at(t)`` is the base pose at any path time (interpolated between path frames:
linear translation, quaternion slerp), e.g. for a ground-truth odometry stream.

Views: ``RigSequence.views()`` (``RigViewSequence``) flattens the rig into one sequence of views, view id
``v = index * C + camera`` (C cameras), with ``T_world_cam`` (F * C, 4, 4), one ``K`` and ``render(v)``:
the interface ``WindowOracle`` serves windows from, so a window may mix cameras and rig poses.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from da3_ros.geometry.transforms import (
    invert_transform,
    is_rigid_transform,
    quaternion_xyzw_to_rotation,
    rotation_from_axis_angle,
    rotation_to_quaternion_xyzw,
    slerp_quaternion_xyzw,
)

from .camera_paths import CameraPath, camera_path
from .renderer import Renderer, pinhole_intrinsics
from .room_scene import RoomScene, default_room
from .sequence import SyntheticFrame

__all__ = ["R_BASE_OPTICAL", "RIG_PRESETS", "RigCamera", "CameraRig", "RigSequence", "RigViewSequence", "RigWorld",
           "stereo_pair", "ring", "rig_preset", "optical_mount"]

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
            if np.shape(c.T_base_cam) != (4, 4) or not is_rigid_transform(c.T_base_cam):
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


def stereo_pair(baseline: float = 0.12, hfov_deg: float = 70.0, yaw_deg: float = 0.0) -> CameraRig:
    """``left`` / ``right`` cameras ``baseline`` metres apart, looking along base yaw ``yaw_deg`` (0: forward,
    the baseline along base y; -90: looking right, the baseline along base x)."""
    if not baseline > 0:
        raise ValueError(f"baseline must be > 0, got {baseline}")
    left = np.array([-np.sin(np.radians(yaw_deg)), np.cos(np.radians(yaw_deg)), 0.0])   # the pair's left axis
    return CameraRig((RigCamera("left", optical_mount(left * baseline / 2, yaw_deg), hfov_deg),
                      RigCamera("right", optical_mount(-left * baseline / 2, yaw_deg), hfov_deg)))


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


RIG_PRESETS = ("stereo", "ring")


def rig_preset(name: str, baseline: float = 0.12, num_cameras: int = 3, yaw_deg: float = 0.0) -> CameraRig:
    """The preset rig ``name``: ``"stereo"`` = ``stereo_pair(baseline, yaw_deg=yaw_deg)`` (metres, degrees;
    ``num_cameras`` unused), ``"ring"`` = ``ring(num_cameras)`` (``baseline`` and ``yaw_deg`` unused)."""
    if name == "stereo":
        return stereo_pair(baseline, yaw_deg=yaw_deg)
    if name == "ring":
        return ring(num_cameras)
    raise ValueError(f"unknown rig preset {name!r}; known presets: {', '.join(RIG_PRESETS)}")


class RigSequence:
    """A rig moving along a camera path through a synthetic room; every camera rendered lazily.

    Args:
        rig: the rig; path, path_scale, width, height, seed, scene: as in ``SyntheticSequence``.
        stamp_jitter_s: half-width of the uniform stamp jitter per camera frame (seconds).
        rate_divisors: per camera, render every d-th path frame (default 1 for every camera).
        camera_offset_s: camera ``c`` captures ``c x camera_offset_s`` seconds after the rig frame's time (its
            stamp and its rendered pose; module docstring).
    """

    def __init__(self, rig: CameraRig, path: str = "room_tour", width: int = 320, height: int = 240,
                 seed: int = 0, path_scale: float = 1.0, scene: Optional[RoomScene] = None,
                 stamp_jitter_s: float = 0.0, rate_divisors: Optional[Sequence[int]] = None, cache: bool = True,
                 camera_offset_s: float = 0.0):
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
        if not np.isfinite(camera_offset_s):
            raise ValueError(f"camera_offset_s must be finite, got {camera_offset_s}")
        self.camera_offset_s = float(camera_offset_s)
        self.T_world_base = self.path.T_world_cam @ invert_transform(optical_mount([0.0, 0.0, 0.0]))
        # each camera's capture times and base poses (the rig frame's own without an offset)
        t_capture = self.path.stamps[None, :] + self.camera_offset_s * np.arange(len(rig))[:, None]   # (C, F)
        self._T_world_base_capture = np.stack([self.T_world_base if c == 0 or self.camera_offset_s == 0.0 else
                                               self._interpolate_base(t_capture[c] * self.path.fps)
                                               for c in range(len(rig))])                            # (C, F, 4, 4)
        rng = np.random.default_rng(seed + 7919)
        t_ns = np.round(t_capture * 1e9).astype(np.int64)
        jitter = rng.uniform(-stamp_jitter_s, stamp_jitter_s, size=(len(rig), len(self.path)))
        self._stamps_ns = np.maximum(t_ns + np.round(jitter * 1e9).astype(np.int64), 0)  # stamps >= 0
        self._cache: Optional[Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]]] = {} if cache else None

    def __len__(self) -> int:
        """Number of rig poses (path frames)."""
        return len(self.path)

    @property
    def T_world_cam(self) -> np.ndarray:
        """(F, C, 4, 4) ground-truth camera-to-world pose of every camera at every rig pose (at its capture
        time)."""
        return np.einsum("cfij,cjk->fcik", self._T_world_base_capture, self.rig.T_base_cam)

    def T_world_base_capture(self, camera: int, index: int) -> np.ndarray:
        """The base pose when ``camera`` captured rig frame ``index`` (``T_world_base[index]`` without an
        offset)."""
        return self._T_world_base_capture[camera, index].copy()

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
        T = self._T_world_base_capture[camera, index] @ self.rig.T_base_cam[camera]
        out = self.renderer.render(self.K[camera], T, self.width, self.height)
        if self._cache is not None:
            self._cache[key] = out
        return out

    def frame(self, camera: int, index: int) -> SyntheticFrame:
        """One camera frame; ``stamp`` in seconds (with jitter), ``T_world_cam`` ground truth."""
        rgb, depth = self.render(camera, index)
        T = self._T_world_base_capture[camera, index] @ self.rig.T_base_cam[camera]
        return SyntheticFrame(index, self.stamp_ns(camera, index) * 1e-9, rgb, depth, self.K[camera].copy(), T)

    def arrivals(self) -> List[Tuple[int, int, int]]:
        """``(camera_index, stamp_ns, frame_index)`` of every camera frame, ordered by stamp (ties by camera):
        the stream a synchroniser would receive from ideal transport."""
        items = [(c, self.stamp_ns(c, int(i)), int(i)) for c in range(len(self.rig)) for i in self.frame_indices(c)]
        return sorted(items, key=lambda x: (x[1], x[0]))

    def T_world_base_at(self, t_s) -> np.ndarray:
        """Base pose(s) ``T_world_base`` (..., 4, 4) at path time(s) ``t_s`` (seconds, frame ``i`` at
        ``i / fps``, no jitter), within ``[0, (F - 1) / fps]``: exact at path frames, linear translation and
        quaternion slerp in between."""
        t = np.asarray(t_s, np.float64)
        last = (len(self) - 1) / self.path.fps
        if np.any(~np.isfinite(t)) or np.any(t < -1e-9) or np.any(t > last + 1e-9):
            raise ValueError(f"path time must lie in [0, {last}] s, got {np.min(t)}..{np.max(t)}")
        x = np.clip(t * self.path.fps, 0.0, len(self) - 1.0)
        return self._interpolate_base(x)

    def _interpolate_base(self, x) -> np.ndarray:
        """Base poses at fractional path frame(s) ``x``: linear translation + slerp between neighbours; before
        the first / past the last frame along the first / last segment (extrapolated)."""
        x = np.asarray(x, np.float64)
        flat = x.reshape(-1)
        out = np.empty((flat.size, 4, 4))
        for k, xi in enumerate(flat):
            i = min(max(int(np.floor(xi)), 0), len(self) - 2)
            a = xi - i
            T0, T1 = self.T_world_base[i], self.T_world_base[i + 1]
            if a == 0.0 or a == 1.0:
                out[k] = T0 if a == 0.0 else T1
                continue
            out[k] = np.eye(4)
            q = slerp_quaternion_xyzw(rotation_to_quaternion_xyzw(T0[:3, :3]),
                                      rotation_to_quaternion_xyzw(T1[:3, :3]), a)
            out[k, :3, :3] = quaternion_xyzw_to_rotation(q)
            out[k, :3, 3] = (1.0 - a) * T0[:3, 3] + a * T1[:3, 3]
        return out.reshape(x.shape + (4, 4))

    def view_id(self, camera: int, index: int) -> int:
        """Flat view id ``index * C + camera`` of ``camera`` at rig pose ``index`` (``RigViewSequence``)."""
        if not 0 <= camera < len(self.rig):
            raise IndexError(f"camera index {camera} out of range [0, {len(self.rig)})")
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} out of range [0, {len(self)})")
        return int(index) * len(self.rig) + int(camera)

    def views(self) -> "RigViewSequence":
        """The rig as one flat ``RigViewSequence`` of its camera views, e.g. for ``WindowOracle``."""
        return RigViewSequence(self)


class RigViewSequence:
    """A ``RigSequence`` as a flat sequence of views: view ``v = index * C + camera`` (C cameras).

    The interface of ``SyntheticSequence`` that ``WindowOracle`` uses: ``T_world_cam`` (F * C, 4, 4)
    ground-truth camera-to-world poses in view order, one ``K`` (3, 3) and ``render(v) -> (rgb, depth)``.
    Rigs whose cameras have different intrinsics are refused (the oracle serves windows of one ``K``).
    """

    def __init__(self, sequence: RigSequence):
        K = np.asarray(sequence.K, np.float64)
        if not np.allclose(K, K[0], rtol=0.0, atol=1e-9):
            raise ValueError(f"the cameras of rig {sequence.rig.names} have different intrinsics; a view sequence "
                             "needs one K for every camera")
        self.sequence = sequence
        self.cameras = len(sequence.rig)
        self.K = K[0].copy()
        self.width, self.height = sequence.width, sequence.height
        self._T_world_cam = sequence.T_world_cam.reshape(-1, 4, 4)

    def __len__(self) -> int:
        return len(self.sequence) * self.cameras

    @property
    def T_world_cam(self) -> np.ndarray:
        """(F * C, 4, 4) camera-to-world pose of every view, view ``v = index * C + camera``."""
        return self._T_world_cam

    def camera_and_index(self, view: int) -> Tuple[int, int]:
        """``(camera, index)`` of view id ``view``."""
        if not 0 <= int(view) < len(self):
            raise IndexError(f"view id {view} out of range [0, {len(self)})")
        index, camera = divmod(int(view), self.cameras)
        return camera, index

    def render(self, view: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(rgb (H, W, 3) uint8, depth (H, W) float32 metres)`` of view ``view``."""
        return self.sequence.render(*self.camera_and_index(view))


@dataclass(frozen=True)
class RigWorld:
    """What rebuilds one rendered rig world exactly: the preset (``RIG_PRESETS``) with its ``baseline``
    (stereo, metres) and ``yaw_deg`` (stereo) / ``num_cameras`` (ring), the camera ``path`` and ``path_scale``,
    the ``seed`` of the room's textures and of the stamp jitter, and ``camera_offset_s`` (unsynchronised
    cameras: it changes the images). ``to_dict`` / ``from_dict`` are its JSON form (the oracle spec's
    ``"rig"``); jitter and rate divisors are per ``sequence`` call (they do not change an image).
    """

    preset: str = "stereo"
    baseline: float = 0.12
    num_cameras: int = 3
    path: str = "room_tour"
    path_scale: float = 1.0
    seed: int = 0
    yaw_deg: float = 0.0
    camera_offset_s: float = 0.0

    def __post_init__(self):
        self.rig()                          # fail early on a bad preset / size
        camera_path(self.path, self.path_scale)

    def rig(self) -> CameraRig:
        return rig_preset(self.preset, baseline=self.baseline, num_cameras=self.num_cameras, yaw_deg=self.yaw_deg)

    def sequence(self, width: int, height: int, *, stamp_jitter_s: float = 0.0,
                 rate_divisors: Optional[Sequence[int]] = None, cache: bool = True) -> RigSequence:
        """The ``RigSequence`` of this world at ``width`` x ``height`` pixels."""
        return RigSequence(self.rig(), path=self.path, width=width, height=height, seed=self.seed,
                           path_scale=self.path_scale, stamp_jitter_s=stamp_jitter_s, rate_divisors=rate_divisors,
                           cache=cache, camera_offset_s=self.camera_offset_s)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RigWorld":
        """From the JSON form; missing keys take the defaults, unknown keys are a ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a rig world must be a mapping, got {type(data).__name__}")
        types = {f.name: type(f.default) for f in fields(cls)}   # str, float or int
        unknown = sorted(set(data) - set(types))
        if unknown:
            raise ValueError(f"unknown rig world keys {unknown}; known keys: {', '.join(types)}")
        return cls(**{k: types[k](v) for k, v in data.items()})
