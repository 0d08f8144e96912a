"""Scene description of the synthetic room: a box-shaped room (seen from inside) plus solid boxes.

World frame: x, y horizontal, z up, metres. Every surface has an integer id: the six room faces
are 0..5 (x-, x+, y-, y+, floor z-, ceiling z+), boxes are 6, 7, ... Each surface has an RGB tint;
the texture itself is a shared seeded multi-octave colour noise (see ``renderer``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

__all__ = ["AxisAlignedBox", "MirroredCopy", "RoomScene", "default_room"]


@dataclass(frozen=True)
class AxisAlignedBox:
    """Solid axis-aligned box ``lo <= p <= hi`` (metres, world frame)."""

    lo: Tuple[float, float, float]
    hi: Tuple[float, float, float]
    tint: Tuple[float, float, float] = (0.8, 0.8, 0.8)

    def __post_init__(self):
        if any(hi <= lo for lo, hi in zip(self.lo, self.hi)):
            raise ValueError(f"box must have hi > lo on every axis, got lo={self.lo} hi={self.hi}")

    def contains(self, p: np.ndarray, margin: float = 0.0) -> bool:
        p = np.asarray(p, dtype=np.float64)
        return bool(np.all(p >= np.asarray(self.lo) - margin) and np.all(p <= np.asarray(self.hi) + margin))


@dataclass
class RoomScene:
    """Room interior ``room.lo <= p <= room.hi`` with solid boxes inside it.

    ``light`` is a point light position (world); ``texture_seed`` seeds the surface texture;
    ``pixels_per_metre`` sets the texture scale on surfaces.
    """

    room: AxisAlignedBox
    boxes: List[AxisAlignedBox] = field(default_factory=list)
    room_tints: Tuple[Tuple[float, float, float], ...] = (
        (0.85, 0.75, 0.65),
        (0.65, 0.80, 0.85),
        (0.80, 0.85, 0.65),
        (0.85, 0.65, 0.75),
        (0.70, 0.60, 0.50),
        (0.90, 0.90, 0.90),
    )
    light: Tuple[float, float, float] = (0.0, 0.0, 2.8)
    texture_seed: int = 0
    pixels_per_metre: float = 96.0

    def __post_init__(self):
        if len(self.room_tints) != 6:
            raise ValueError(f"room_tints needs 6 entries (one per room face), got {len(self.room_tints)}")
        for i, b in enumerate(self.boxes):
            if not (np.all(np.asarray(b.lo) >= np.asarray(self.room.lo))
                    and np.all(np.asarray(b.hi) <= np.asarray(self.room.hi))):
                raise ValueError(f"box {i} ({b.lo}..{b.hi}) is not inside the room ({self.room.lo}..{self.room.hi})")

    @property
    def tints(self) -> np.ndarray:
        """(6 + n_boxes, 3) float tints indexed by surface id."""
        return np.array(list(self.room_tints) + [b.tint for b in self.boxes], dtype=np.float32)

    def is_free(self, p: np.ndarray, margin: float = 0.2) -> bool:
        """True when ``p`` is inside the room and at least ``margin`` away from every box and wall."""
        p = np.asarray(p, dtype=np.float64)
        inside = np.all(p > np.asarray(self.room.lo) + margin) and np.all(p < np.asarray(self.room.hi) - margin)
        return bool(inside and not any(b.contains(p, margin) for b in self.boxes))


def default_room(texture_seed: int = 0) -> RoomScene:
    """8 m x 6 m x 3 m room with five boxes (cabinets, a table top, a pillar)."""
    return RoomScene(
        room=AxisAlignedBox((-4.0, -3.0, 0.0), (4.0, 3.0, 3.0)),
        boxes=[
            AxisAlignedBox((2.5, -2.5, 0.0), (3.5, -1.5, 1.2), (0.9, 0.4, 0.3)),
            AxisAlignedBox((-3.5, 1.5, 0.0), (-2.5, 2.8, 0.8), (0.3, 0.6, 0.9)),
            AxisAlignedBox((0.8, 1.8, 0.0), (1.6, 2.6, 1.5), (0.4, 0.8, 0.4)),
            AxisAlignedBox((-1.5, 1.2, 0.7), (-0.5, 2.0, 0.9), (0.9, 0.8, 0.3)),
            AxisAlignedBox((-0.5, -2.9, 0.0), (0.3, -2.2, 2.0), (0.7, 0.4, 0.8)),
        ],
        texture_seed=texture_seed,
    )


#: reflection of world x (the mirrored copy's plane is x = 0 of the room) and of the camera's x axis
_FLIP = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class MirroredCopy:
    """A mirrored look-alike of the room placed elsewhere: the room reflected at its plane x = 0, then shifted by
    ``offset`` (metres, world). A camera at ``T_world_cam`` inside the copy sees exactly the left-right mirror
    image of the camera ``to_room(T_world_cam)`` in the room (the renderer's principal point is the image
    centre), so a mirror-invariant place descriptor proposes the room's place while its geometry differs."""

    offset: Tuple[float, float, float] = (20.0, 0.0, 0.0)

    def contains(self, scene: RoomScene, p: np.ndarray) -> bool:
        q = _FLIP @ (np.asarray(p, np.float64) - np.asarray(self.offset))
        return scene.room.contains(q)

    def to_room(self, T_world_cam: np.ndarray) -> np.ndarray:
        """The room camera whose mirror image the copy's camera sees (a proper rigid pose)."""
        T = np.asarray(T_world_cam, np.float64)
        out = np.eye(4)
        out[:3, :3] = _FLIP @ T[:3, :3] @ _FLIP
        out[:3, 3] = _FLIP @ (T[:3, 3] - np.asarray(self.offset))
        return out

    def from_room(self, T_room_cam: np.ndarray) -> np.ndarray:
        """The copy's camera that sees the mirror image of the room camera ``T_room_cam`` (inverse of ``to_room``)."""
        T = np.asarray(T_room_cam, np.float64)
        out = np.eye(4)
        out[:3, :3] = _FLIP @ T[:3, :3] @ _FLIP
        out[:3, 3] = _FLIP @ T[:3, 3] + np.asarray(self.offset)
        return out
