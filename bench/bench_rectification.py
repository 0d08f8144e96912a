#!/usr/bin/env python3
"""Benchmark: rectifying a 640x480 uint8 RGB image (da3_ros.camera_models.rectification, ROS-free).

For a plumb_bob (k1 = -0.3) and an equidistant (fisheye) calibration: the map build time
(``Rectification.build``: cv2.initUndistortRectifyMap / cv2.fisheye.initUndistortRectifyMap into
CV_16SC2, once per calibration) and the time of one ``remap`` (cv2.remap, bilinear, what every frame
pays), with OpenCV's default thread count and with one thread, and the in-pipeline cost per frame
(``CameraStream.rectify``, the step ``WindowProcessor`` runs for a raw camera: cache lookup of the camera_info's
numbers + remap; the processor's ``rectify`` stage). Prints one JSON object (milliseconds;
median / p90 over repeats; wall clock, so noisy on a shared machine: quote the median). Target: a
remap within ``--target-ms`` (1.5 ms).

    .venv/bin/python bench/bench_rectification.py [--repeats 300] [--builds 10]
"""
import argparse
import json
import os
import time

import cv2
import numpy as np

from da3_ros.camera_models import RawCamera, Rectification, Rectifier
from da3_ros.pipeline.camera_stream import CameraFrame, CameraStream

W, H = 640, 480
EYE = np.eye(3).ravel().tolist()
CAMERAS = {
    "plumb_bob": RawCamera.from_fields(W, H, "plumb_bob", [-0.3, 0.09, 0.001, -0.0005, 0.0],
                                       [500.0, 0.0, 322.0, 0.0, 502.0, 241.0, 0.0, 0.0, 1.0], EYE,
                                       [480.0, 0.0, 319.5, 0.0, 0.0, 480.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]),
    "equidistant": RawCamera.from_fields(W, H, "equidistant", [0.05, -0.01, 0.002, -0.0005],
                                         [300.0, 0.0, 321.0, 0.0, 300.5, 238.0, 0.0, 0.0, 1.0], EYE,
                                         [250.0, 0.0, 319.5, 0.0, 0.0, 250.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]),
}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _summary(values_s):
    ms = 1e3 * np.asarray(values_s)
    return {"median": round(float(np.median(ms)), 4), "p90": round(float(np.percentile(ms, 90)), 4),
            "n": int(ms.size)}


def _time_remap(rect, image, repeats):
    for _ in range(10):   # warm-up (page faults, thread pool)
        rect.remap(image)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        rect.remap(image)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return _summary(wall), round(1e3 * float(np.median(cpu)), 4)


def _time_stream(raw, image, repeats):
    """``CameraStream.rectify`` per frame (a new but equal RawCamera each frame, as from every camera_info)."""
    stream = CameraStream((504, 378))
    copies = [RawCamera(raw.width, raw.height, raw.distortion_model, raw.D, raw.K, raw.R, raw.P)
              for _ in range(repeats + 10)]
    frames = [CameraFrame(image, i, camera) for i, camera in enumerate(copies)]
    wall = []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        stream.rectify(frame)
        if i >= 10:
            wall.append(time.perf_counter() - t0)
    assert stream.rectifier.builds == 1
    return _summary(wall)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--target-ms", type=float, default=1.5)
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    default_threads = cv2.getNumThreads()
    results = {}
    for name, raw in CAMERAS.items():
        builds = [Rectification.build(raw).build_ms / 1e3 for _ in range(args.builds)]
        rectifier = Rectifier()
        rect = rectifier.rectification(raw)
        t0 = time.perf_counter()
        for _ in range(1000):   # a camera_info per frame: the cache lookup (key of the numbers)
            rectifier.rectification(raw)
        lookup_us = (time.perf_counter() - t0) * 1e3
        entry = {"map_build_ms": _summary(builds), "cache_hit_us": round(lookup_us, 3)}
        for threads in (default_threads, 1):
            cv2.setNumThreads(threads)
            wall, cpu_ms = _time_remap(rect, image, args.repeats)
            entry[f"remap_ms_{threads}_threads"] = wall
            entry[f"remap_cpu_ms_{threads}_threads"] = cpu_ms
        cv2.setNumThreads(default_threads)
        entry["in_pipeline_ms"] = _time_stream(raw, image, args.repeats)
        entry["within_target"] = bool(entry["in_pipeline_ms"]["median"] <= args.target_ms)
        results[name] = entry
    print(json.dumps({"benchmark": "rectification", "image": f"{W}x{H} uint8 RGB", "cpu": cpu_model(),
                      "cpu_count": os.cpu_count(), "opencv": cv2.__version__, "opencv_threads": default_threads,
                      "target_remap_ms": args.target_ms, "cameras": results}))


if __name__ == "__main__":
    main()
