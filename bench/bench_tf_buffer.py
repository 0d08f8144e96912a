#!/usr/bin/env python3
"""Benchmark: cost of TransformBuffer.set_transform and of an interpolated lookup (ROS-free).

Tree map -> odom -> base_link (dynamic, 50 Hz, a full 10 s cache = 500 samples per edge) -> camera_link
-> camera_optical (static), plus odom -> arm (static). Times ``set_transform`` of a dynamic sample
(including pruning) and ``lookup`` of camera_optical into map / into arm (through the common ancestor
odom) at a random stamp between samples. Prints one JSON object (microseconds; median / p90 over
repeats; wall clock, so noisy on a shared machine: quote the median).

    .venv/bin/python bench/bench_tf_buffer.py [--lookups 5000]
"""
import argparse
import json
import platform
import time

import numpy as np

from da3_ros.tf_tree.transform_buffer import TransformBuffer
from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle

S = 1_000_000_000
PERIOD = S // 50


def _summary(values_s):
    us = 1e6 * np.asarray(values_s)
    return {"median": round(float(np.median(us)), 2), "p90": round(float(np.percentile(us, 90)), 2),
            "n": int(us.size)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=5000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    buf = TransformBuffer(cache_time_s=10.0)
    buf.set_transform("base_link", "camera_link", 0, make_transform(rotation_from_axis_angle([0.1, 0, 0]), [0.2, 0, 1]),
                      static=True)
    T_cam_opt = make_transform(rotation_from_axis_angle([-1.2, 0, 0]), [0, 0, 0])
    buf.set_transform("camera_link", "camera_optical", 0, T_cam_opt, static=True)
    buf.set_transform("odom", "arm", 0, make_transform(np.eye(3), [1, 0, 0.5]), static=True)
    insert_s = []
    n_samples = 2 * 500 + 500  # fill the cache, then keep inserting (pruning every time)
    for k in range(n_samples):
        stamp = 100 * S + k * PERIOD
        for parent, child in (("map", "odom"), ("odom", "base_link")):
            T = make_transform(rotation_from_axis_angle(rng.normal(size=3) * 0.3), rng.normal(size=3))
            t0 = time.perf_counter()
            buf.set_transform(parent, child, stamp, T)
            insert_s.append(time.perf_counter() - t0)
    latest = 100 * S + (n_samples - 1) * PERIOD
    lookup_map, lookup_arm = [], []
    for _ in range(args.lookups):
        stamp = int(latest - rng.uniform(0, 9.9) * S)
        t0 = time.perf_counter()
        buf.lookup("map", "camera_optical", stamp)
        t1 = time.perf_counter()
        buf.lookup("arm", "camera_optical", stamp)
        t2 = time.perf_counter()
        lookup_map.append(t1 - t0)
        lookup_arm.append(t2 - t1)
    print(json.dumps({"benchmark": "tf_buffer", "cpu": platform.processor() or platform.machine(),
                      "samples_per_edge": 500, "set_transform_us": _summary(insert_s),
                      "lookup_map_camera_optical_4_edges_us": _summary(lookup_map),
                      "lookup_arm_camera_optical_via_odom_us": _summary(lookup_arm)}))


if __name__ == "__main__":
    main()
