"""Benchmark: loop closure on the evidence world (test/loop_world.py: three laps of one circle with an 8 deg/m
heading-biased oracle, then a mirrored look-alike copy of the room), in-process, ROS-free.

Prints one JSON object: ATE (m, after a similarity alignment) of the laps with and without loop closure, the drift
without as % of the path length, loops accepted / true / rejected by reason, the optimisation time per loop
(median, ms) and the graph's size, whether a restart in the saved map relocalises (the descriptor search
time at 2000 keyframes: bench/bench_keyframe_search.py).
Run: ``PYTHONPATH=. .venv/bin/python bench/bench_loop.py``.
"""
from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))

from da3_ros.geometry.transforms import rotation_angle  # noqa: E402
from loop_world import ate, path_length, run_loop_world, world  # noqa: E402

TRUE_LOOP_M, TRUE_LOOP_DEG = 0.3, 15.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seq, spec = world(Path(tmp))
        frames = list(range(len(seq)))
        without = run_loop_world(seq, spec, frames, loop_closure=False)
        t = time.perf_counter()
        run = run_loop_world(seq, spec, frames, loop_closure=True, save_directory=str(Path(tmp) / "maps"))
        wall = time.perf_counter() - t
        laps = [k for k in run.keyframes if run.segments[k].startswith("lap")]
        laps_without = [k for k in without.keyframes if without.segments[k].startswith("lap")]
        loops = [e for e in run.events if e.kind == "loop"]
        true = 0
        for e in loops:
            Ta, Tb = run.T_world_cam[e.candidate_id], run.T_world_cam[e.query_id]
            true += int(np.linalg.norm(Ta[:3, 3] - Tb[:3, 3]) <= TRUE_LOOP_M and np.degrees(
                rotation_angle(Ta[:3, :3].T @ Tb[:3, :3])) <= TRUE_LOOP_DEG)
        second = run_loop_world(seq, spec, list(range(70, 130)), map_load_directory=run.saved)
        length = path_length(without.T_world_cam, laps_without)
        ate_without = ate(without.T_map_cam, without.T_world_cam, laps_without)
        cpu = platform.processor()
        try:
            cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
        except (OSError, StopIteration):
            pass
        print(json.dumps({
            "cpu": cpu, "frames": len(frames), "keyframes": len(run.keyframes),
            "ate_without_m": round(ate_without, 4), "ate_with_m": round(ate(run.T_map_cam, run.T_world_cam, laps), 4),
            "drift_without_pct_of_path": round(100.0 * ate_without / length, 2), "path_m": round(length, 2),
            "loops_accepted": len(loops), "loops_true": true, "loops_rejected": run.stats["loop_rejected"],
            "look_alike_rejected": sum(1 for e in run.events if run.segments[e.query_id] == "look_alike"
                                       and e.kind == "rejected"),
            "optimisation_ms_median": round(float(np.median(run.optimisation_ms)), 2) if run.optimisation_ms else None,
            "optimisations": len(run.optimisation_ms), "graph_keyframes": run.stats["last_optimisation_keyframes"],
            "drive_with_loops_s": round(wall, 2),
            "restart_relocalised": bool(second.stats["relocalised"]),
            "restart_first_relocalised_frame": second.outcomes.index("relocalised")
            if "relocalised" in second.outcomes else None}))


if __name__ == "__main__":
    main()
