#!/usr/bin/env python3
"""Benchmark: per-window cost of the tracker (window alignment + full update) at network size.

Renders a stretch of the synthetic ``room_tour`` at the network input size (default 504x280,
the DA3 default processing width), feeds oracle windows of N views to ``WindowTracker`` and
times (wall clock, and process CPU time for the update, which other jobs on a shared machine
inflate much less), per window: ``align_window`` alone (correspondences + IRLS + gates) and the whole
``tracker.update`` (input checks, grid sampling/unprojection, alignment, keyframe logic,
refinement, depth rescaling). The oracle and the renderer are outside the timed region.
Prints one JSON object (milliseconds; median / p90 / max over windows).

    .venv/bin/python bench/bench_alignment.py [--frames 80] [--views 4] [--width 504 --height 280]
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import WindowOracle
from da3_ros.tracking import TrackerConfig, WindowTracker


def _summary(values_s):
    ms = 1000.0 * np.asarray(values_s)
    return {"median": round(float(np.median(ms)), 3), "p90": round(float(np.percentile(ms, 90)), 3),
            "max": round(float(ms.max()), 3), "n": int(ms.size)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--width", type=int, default=504)
    ap.add_argument("--height", type=int, default=280)
    ap.add_argument("--grid-points", type=int, default=TrackerConfig().grid_points)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.frames < 10:
        ap.error("--frames must be >= 10")

    seq = SyntheticSequence(width=args.width, height=args.height, seed=args.seed)
    oracle = WindowOracle(seq, seed=args.seed)
    tracker = WindowTracker(TrackerConfig(window_size=args.views, grid_points=args.grid_points))
    align_s, update_s, update_cpu_s = [], [], []
    n_frames = min(args.frames, len(seq))
    for i in range(n_frames):
        ids = tracker.window_for(i, float(seq.stamps[i]))
        pred = oracle.predict(ids, ref_view="random")
        t0 = time.perf_counter()
        c0 = time.process_time()
        res = tracker.update(ids, pred)
        dc = time.process_time() - c0
        dt = time.perf_counter() - t0
        if "align_s" in res.stats:  # the first window only initialises
            align_s.append(res.stats["align_s"])
            update_s.append(dt)
            update_cpu_s.append(dc)
    out = {
        "benchmark": "tracker_window_alignment",
        "views": args.views,
        "height": args.height,
        "width": args.width,
        "grid_points_per_view": len(tracker._grid) if tracker._grid is not None else None,
        "windows": len(update_s),
        "align_window_ms": _summary(align_s),
        "tracker_update_ms": _summary(update_s),
        "tracker_update_cpu_ms": _summary(update_cpu_s),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "budget_ms": 10.0,
        "within_budget": bool(np.median(update_s) * 1000.0 <= 10.0),
        "keyframes": len([e for e in tracker.trajectory if e.keyframe]),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
