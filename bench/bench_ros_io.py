"""Benchmark of the ROS I/O conversions at 640x480 (prints JSON).

    .venv/bin/python bench/bench_ros_io.py [--repeats 200]

Reports the median / p90 milliseconds of: Image -> numpy (rgb8, padded and tight), Image -> RGB
(bgr8), numpy -> Image (rgb8), and building a 640x480 organized xyz+rgb PointCloud2.
"""
import argparse
import json
import platform
import time

import numpy as np

from da3_ros.ros_io import build_pointcloud2, image_to_numpy, image_to_rgb, numpy_to_image


def timed(fn, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(float(np.median(samples)), 4), "p90_ms": round(float(np.percentile(samples, 90)), 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg_tight = numpy_to_image(rgb, "rgb8")
    msg_padded = numpy_to_image(rgb, "rgb8", row_padding=64)
    msg_bgr = numpy_to_image(rgb, "bgr8")
    xyz = rng.normal(size=(480, 640, 3)).astype(np.float32)
    xyz[rng.random((480, 640)) < 0.1] = np.nan
    results = {
        "image_to_numpy_rgb8_640x480": timed(lambda: np.ascontiguousarray(image_to_numpy(msg_tight)), args.repeats),
        "image_to_numpy_rgb8_640x480_padded_step": timed(
            lambda: np.ascontiguousarray(image_to_numpy(msg_padded)), args.repeats),
        "image_to_rgb_bgr8_640x480": timed(lambda: image_to_rgb(msg_bgr), args.repeats),
        "numpy_to_image_rgb8_640x480": timed(lambda: numpy_to_image(rgb, "rgb8"), args.repeats),
        "pointcloud2_organized_xyz_rgb_640x480": timed(lambda: build_pointcloud2(xyz, rgb), args.repeats),
    }
    print(json.dumps({"benchmark": "ros_io", "repeats": args.repeats,
                      "machine": platform.processor() or platform.machine(),
                      "note": "image_to_numpy timings include a contiguous copy of the view",
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
