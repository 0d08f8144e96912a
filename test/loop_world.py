"""Loop closure's evidence world, in-process (processor + OracleBackend + synthetic world, no ROS): shared by
test/test_loop_closure_world.py and bench/bench_loop.py.

``loop_laps`` (3 laps of one circle, then a mirrored look-alike copy of the room elsewhere), rendered at 128x96,
an oracle with a systematic heading error (``yaw_bias_deg_per_m``) so that the tracked trajectory drifts, and
``run_loop_world`` driving one ``WindowProcessor`` through it (loop closure on or off).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec
from da3_ros.geometry.alignment import umeyama
from da3_ros.pipeline.camera_stream import CameraFrame
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.synthetic.room_scene import MirroredCopy
from da3_ros.synthetic.sequence import SyntheticSequence

WIDTH, HEIGHT = 128, 96
#: the heading error that makes the un-closed trajectory drift >= 3 % of its length (asserted by the test)
LOOP_NOISE = {"yaw_bias_deg_per_m": 8.0}
COPY_OFFSET = (20.0, 0.0, 0.0)


@dataclass
class LoopRun:
    """One drive: the keyframes' ground truth and estimates, the loop events and the processor's stats."""

    keyframes: List[int]
    T_world_cam: Dict[int, np.ndarray]          # ground truth (metres)
    T_odom_cam: Dict[int, np.ndarray]           # the tracker's (odometry units)
    T_map_cam: Dict[int, np.ndarray]            # corrected (map frame, odometry units); = T_odom_cam without loops
    events: list
    stats: dict
    segments: List[str]
    outcomes: List[str] = field(default_factory=list)
    saved: str = ""
    optimisation_ms: List[float] = field(default_factory=list)


def world(tmp_path: Path, frames: Optional[List[int]] = None):
    """(sequence, spec path) of the loop world; ``frames``: the frame indices the spec knows (default all)."""
    seq = SyntheticSequence("loop_laps", width=WIDTH, height=HEIGHT, mirrored_copy=MirroredCopy(COPY_OFFSET))
    ids = range(len(seq)) if frames is None else frames
    spec = write_oracle_spec(Path(tmp_path) / "loop_world.json", {i: seq.render(i)[0] for i in ids},
                             camera_path="loop_laps", width=WIDTH, height=HEIGHT, views=4, noise=LOOP_NOISE,
                             mirrored_copy=COPY_OFFSET)
    return seq, spec


def run_loop_world(seq, spec, frames, *, loop_closure: bool = True, map_load_directory: str = "",
                   save_directory: str = "") -> LoopRun:
    """Drive a fresh processor through ``frames`` (indices of ``seq``, stamps 0.1 s apart in drive order)."""
    proc = WindowProcessor(OracleBackend(str(spec)), ProcessorConfig(
        loop_closure=loop_closure, map_load_directory=map_load_directory, publish_points=False))
    T_odom, outcomes, ms, published, ratios = {}, [], [], {}, {}
    last = None
    for n, i in enumerate(frames):
        rgb = seq.render(i)[0]
        out = proc.process([CameraFrame(rgb, int(n * 1e8), None, None)])
        outcomes.append(out.tracking.value)
        # every optimisation is applied before the frame's correction is read: the evidence's numbers must not
        # depend on when the optimiser thread finishes (a loaded CI machine); the node never waits for it
        assert proc.loop.wait_idle(120.0), "pose-graph optimiser still busy after 120 s"
        closer = proc.loop.closer
        latest = closer.optimizer.latest() if closer is not None else None
        if latest is not None and latest is not last:
            ms.append(latest.seconds * 1e3)
        last = latest
        if out.keyframe and out.T_odom_cam is not None:
            T_odom[n] = out.T_odom_cam.copy()
            C = proc.map_correction()
            published[n] = (np.eye(4) if C is None else C) @ out.T_odom_cam   # T_map_cam as published then
            ratios[n] = proc.loop_stats().get("relocalisation_ratio", float("nan"))   # its map units then
    closer = proc.loop.closer
    if closer is not None:
        closer._apply_pending()
    keyframes = sorted(T_odom)
    T_map = closer.map_poses() if closer is not None else dict(T_odom)
    saved = proc.save_map(save_directory) if save_directory else ""
    run_published = published
    run = LoopRun(keyframes, {n: seq.T_world_cam[frames[n]] for n in keyframes}, T_odom,
                  {n: T_map.get(n, T_odom[n]) for n in keyframes}, list(closer.events) if closer else [],
                  proc.loop_stats(), [seq.path.segments[frames[n]] for n in range(len(frames))], outcomes, saved, ms)
    run.T_map_cam_published = run_published
    run.relocalisation_ratios = ratios
    proc.close()
    return run


def ate(estimated: Dict[int, np.ndarray], truth: Dict[int, np.ndarray], keys) -> float:
    """RMS camera-centre error (metres) after the best similarity alignment to the ground truth."""
    src = np.stack([estimated[k][:3, 3] for k in keys])
    dst = np.stack([truth[k][:3, 3] for k in keys])
    S = umeyama(src, dst, with_scale=True)
    moved = src @ S[:3, :3].T + S[:3, 3]
    return float(np.sqrt(np.mean(np.sum((moved - dst) ** 2, axis=1))))


def path_length(truth: Dict[int, np.ndarray], keys) -> float:
    c = np.stack([truth[k][:3, 3] for k in keys])
    return float(np.sum(np.linalg.norm(np.diff(c, axis=0), axis=1)))
