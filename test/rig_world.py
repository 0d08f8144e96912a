"""Ground truth of the rig world publisher (``test/rig_world_publisher.py``), ROS-free: the identical
``RigSequence`` from the publisher's arguments, what it publishes in which order, its frame names and its
ground-truth base odometry.

The publisher and the tests build the world through these functions, so a test computes the ground truth of
exactly what went over DDS: ``build_rig_sequence(...)`` (per camera ``render(c, i)`` RGB + metric depth,
``T_world_base`` (F, 4, 4), ``T_world_cam`` (F, C, 4, 4), ``stamp_ns(c, i)``), ``published_views`` (the
publishing order), ``T_wheel_base`` (the odometry TF) and ``odometry_stamps_ns``.

Stamps on the wire are ``stamp_offset_ns + RigSequence.stamp_ns(camera, index)`` (images and camera_info) and
``stamp_offset_ns + odometry stamp`` (odometry); ``stamp_ns(c, i)`` is path time ``i / fps`` plus the seeded
jitter.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from da3_ros.geometry.transforms import invert_transform
from da3_ros.synthetic.rig import RigSequence, RigWorld

BASE_FRAME = "base_link"
WHEEL_ODOM_FRAME = "wheel_odom"
ODOMETRY_RATE_HZ = 50.0
_ODOMETRY_PERIOD_NS = 20_000_000   # 1 / ODOMETRY_RATE_HZ, exact in integer nanoseconds


def optical_frame(camera_name: str) -> str:
    """TF frame of a rig camera's optical frame (``left`` -> ``left_optical_frame``)."""
    return f"{camera_name}_optical_frame"


def parse_rate_divisors(text: str) -> Tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)`` (per camera: publish every d-th path frame)."""
    try:
        out = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"rate divisors must be comma-separated integers, got {text!r}") from None
    if not out:
        raise ValueError(f"rate divisors must not be empty, got {text!r}")
    assert all(d >= 1 for d in out), f"rate divisors must be >= 1, got {out}"
    return out


def rig_world(rig: str = "stereo", baseline: float = 0.12, num_cameras: int = 3, path: str = "room_tour",
              path_scale: float = 1.0, seed: int = 0) -> RigWorld:
    """The world of the publisher's ``--rig/--baseline/--num-cameras/--path/--path-scale/--seed``."""
    return RigWorld(preset=rig, baseline=baseline, num_cameras=num_cameras, path=path, path_scale=path_scale,
                    seed=seed)


def build_rig_sequence(rig: str = "stereo", baseline: float = 0.12, num_cameras: int = 3, path: str = "room_tour",
                       width: int = 160, height: int = 120, rate_divisors: Optional[Sequence[int]] = None,
                       stamp_jitter_s: float = 0.0, path_scale: float = 1.0, seed: int = 0) -> RigSequence:
    """The publisher's ``RigSequence`` for the same arguments (``rate_divisors`` None: every camera at full
    rate; for a ring pass one divisor per camera)."""
    return rig_world(rig, baseline, num_cameras, path, path_scale, seed).sequence(
        width, height, stamp_jitter_s=stamp_jitter_s, rate_divisors=rate_divisors)


def published_views(seq: RigSequence, first_frame: int, frames: int) -> List[Tuple[int, List[int]]]:
    """``[(path frame i, [cameras that publish i]), ...]`` in publishing order, for the path frames
    ``first_frame .. first_frame + frames - 1``; camera ``c`` publishes frame ``i`` iff ``i % rate_divisors[c] == 0``
    (``RigSequence.frame_indices``). A frame with every camera is a complete rig group."""
    if first_frame < 0 or frames < 1 or first_frame + frames > len(seq):
        raise ValueError(f"frames {first_frame}..{first_frame + frames - 1} are not within the path's "
                         f"{len(seq)} frames")
    return [(i, [c for c in range(len(seq.rig)) if i % seq.rate_divisors[c] == 0])
            for i in range(first_frame, first_frame + frames)]


def image_counts(seq: RigSequence, first_frame: int, frames: int) -> dict:
    """{camera name: images published} (the publisher's ``COUNTS`` line)."""
    counts = {name: 0 for name in seq.rig.names}
    for _, cameras in published_views(seq, first_frame, frames):
        for c in cameras:
            counts[seq.rig.names[c]] += 1
    return counts


def odometry_stamps_ns(seq: RigSequence, first_frame: int, lead_s: float = 0.1) -> np.ndarray:
    """Odometry sample stamps (ns of path time, without the offset) the publisher may send: the 50 Hz grid
    from ``lead_s`` before the first frame's path time (clamped at 0; covers a negative stamp jitter) to the
    path's last frame. Path frame ``i`` (``i / fps``) lies on the grid when ``fps`` divides 50 (10 Hz does)."""
    last_ns = int(round((len(seq) - 1) / seq.path.fps * 1e9))
    start_ns = max(0, int(round((first_frame / seq.path.fps - lead_s) * 1e9)))
    k0 = start_ns // _ODOMETRY_PERIOD_NS
    return np.arange(k0, last_ns // _ODOMETRY_PERIOD_NS + 1, dtype=np.int64) * _ODOMETRY_PERIOD_NS


def T_wheel_base(seq: RigSequence, first_frame: int, t_ns) -> np.ndarray:
    """Ground-truth odometry ``T_wheelodom_base`` (..., 4, 4) at path time(s) ``t_ns`` (ns, without the offset):
    the base pose relative to the base pose of path frame ``first_frame`` (identity there), interpolated between
    path frames (``RigSequence.T_world_base_at``)."""
    t_s = np.asarray(t_ns, np.float64) * 1e-9
    return invert_transform(seq.T_world_base[first_frame]) @ seq.T_world_base_at(t_s)
