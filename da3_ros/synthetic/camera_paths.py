"""Named, deterministic camera paths through ``default_room`` as camera-to-world poses.

A path is a (F, 4, 4) array of ``T_world_cam`` (OpenCV optical axes; world z up) plus per-frame
segment labels. ``room_tour`` (the default, 300 frames at 10 Hz) has five segments:

==========  ========  ==========================================================
frames      segment   motion
==========  ========  ==========================================================
0-99        forward   3.0 m straight along +x, heading wobbles +-4 deg
100-159     turn      quarter circle of radius 1 m, turning left by 90 deg
160-189     stop      camera holds still
190-239     rotate    pure rotation in place, yaw +90 deg
240-299     forward   1.8 m straight along -x
==========  ========  ==========================================================

The camera is 1.4 m above the floor, pitched 8 deg down, with a small roll/pitch/height
wobble so that the motion is not planar. ``scale`` stretches the number of frames per segment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

import numpy as np

from da3_ros.geometry.transforms import rotation_from_axis_angle

from .room_scene import MirroredCopy

__all__ = ["CameraPath", "camera_path", "PATH_NAMES", "look_pose", "loop_laps"]


@dataclass
class CameraPath:
    """Camera-to-world poses ``T_world_cam`` (F, 4, 4), segment label per frame, frame rate."""

    name: str
    T_world_cam: np.ndarray
    segments: List[str]
    fps: float

    def __len__(self) -> int:
        return int(self.T_world_cam.shape[0])

    @property
    def stamps(self) -> np.ndarray:
        return np.arange(len(self), dtype=np.float64) / self.fps


def look_pose(position, yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """``T_world_cam`` of a camera at ``position`` heading ``yaw`` (rad, from +x towards +y in the
    world xy-plane), pitched up by ``pitch`` and rolled by ``roll`` (about the optical axis)."""
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    R = np.stack([right, down, fwd], axis=1)  # columns: camera x, y, z in world
    # pitch up = rotate about camera x by -pitch (y down, z forward); roll about camera z.
    R = R @ rotation_from_axis_angle([-pitch, 0.0, 0.0]) @ rotation_from_axis_angle([0.0, 0.0, roll])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = position
    return T


def _room_tour(scale: float = 1.0) -> CameraPath:
    def n(k):
        return max(2, int(round(k * scale)))

    xs, ys, yaws, segs = [], [], [], []
    # forward: (-2.5, -1) -> (0.5, -1), heading +x with a wobble
    k = n(100)
    s = np.arange(k) / k
    xs += list(-2.5 + 3.0 * s)
    ys += [-1.0] * k
    yaws += list(np.radians(4.0) * np.sin(2 * np.pi * s))
    segs += ["forward"] * k
    # turn: quarter circle centre (0.5, 0), radius 1, from angle -90 deg to 0 deg
    k = n(60)
    a = -np.pi / 2 + (np.pi / 2) * np.arange(k) / k
    xs += list(0.5 + np.cos(a))
    ys += list(0.0 + np.sin(a))
    yaws += list(a + np.pi / 2)
    segs += ["turn"] * k
    # stop at (1.5, 0) heading +y
    k = n(30)
    xs += [1.5] * k
    ys += [0.0] * k
    yaws += [np.pi / 2] * k
    segs += ["stop"] * k
    # pure rotation: yaw 90 -> 180 deg
    k = n(50)
    xs += [1.5] * k
    ys += [0.0] * k
    yaws += list(np.pi / 2 + (np.pi / 2) * np.arange(1, k + 1) / k)
    segs += ["rotate"] * k
    # forward along -x: (1.5, 0) -> (-0.3, 0)
    k = n(60)
    s = np.arange(1, k + 1) / k
    xs += list(1.5 - 1.8 * s)
    ys += [0.0] * k
    yaws += [np.pi] * k
    segs += ["forward"] * k

    F = len(xs)
    moving = np.array([sg not in ("stop", "rotate") for sg in segs], dtype=float)
    # wobble phase advances only while translating: "stop" is exactly static, "rotate" is a pure
    # rotation, and height/pitch/roll stay continuous across segment borders
    i = np.cumsum(moving) / scale
    z = 1.4 + 0.03 * np.sin(2 * np.pi * i / 37.0)
    pitch = np.radians(-8.0 + 2.0 * np.sin(2 * np.pi * i / 53.0))
    roll = np.radians(1.5 * np.sin(2 * np.pi * i / 41.0))
    poses = np.stack([look_pose([xs[j], ys[j], z[j]], yaws[j], pitch[j], roll[j]) for j in range(F)])
    return CameraPath("room_tour", poses, segs, fps=10.0)


def _straight(scale: float = 1.0) -> CameraPath:
    k = max(2, int(round(100 * scale)))
    s = np.arange(k) / k
    poses = np.stack([look_pose([-2.5 + 3.0 * t, -1.0, 1.4], 0.0, np.radians(-8.0)) for t in s])
    return CameraPath("straight", poses, ["forward"] * k, fps=10.0)


def loop_laps(scale: float = 1.0, laps: int = 3, frames_per_lap: int = 150, look_alike_frames: int = 40,
              mirrored_copy: MirroredCopy = MirroredCopy()) -> CameraPath:
    """``laps`` counter-clockwise laps of one circle (centre (0, -0.3), radius 1.2 m, camera 1.4 m up, heading
    along the circle, a small height/pitch/roll wobble; segments "lap1", "lap2", ...), then a "look_alike"
    segment: the first ``look_alike_frames`` poses of lap 1 mirrored into ``mirrored_copy`` (the camera is
    carried there: the copy is elsewhere, not connected), where every image is the mirror image of one of lap 1."""
    k = max(8, int(round(frames_per_lap * scale)))
    poses, segs = [], []
    for j in range(laps * k):
        a = -np.pi / 2 + 2 * np.pi * j / k
        z = 1.4 + 0.03 * np.sin(2 * np.pi * j / 37.0)
        pitch = np.radians(-8.0 + 2.0 * np.sin(2 * np.pi * j / 53.0))
        roll = np.radians(1.5 * np.sin(2 * np.pi * j / 41.0))
        poses.append(look_pose([1.2 * np.cos(a), -0.3 + 1.2 * np.sin(a), z], a + np.pi / 2, pitch, roll))
        segs.append(f"lap{j // k + 1}")
    for j in range(int(look_alike_frames * scale)):
        poses.append(mirrored_copy.from_room(poses[j]))
        segs.append("look_alike")
    return CameraPath("loop_laps", np.stack(poses), segs, fps=10.0)


_PATHS: Dict[str, Callable[[float], CameraPath]] = {"room_tour": _room_tour, "straight": _straight,
                                                    "loop_laps": loop_laps}
PATH_NAMES = tuple(_PATHS)


def camera_path(name: str = "room_tour", scale: float = 1.0) -> CameraPath:
    """The named path; ``scale`` multiplies the frame count of each segment (same trajectory)."""
    if name not in _PATHS:
        raise ValueError(f"unknown camera path {name!r}; known paths: {', '.join(PATH_NAMES)}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return _PATHS[name](scale)
