"""Resident memory a Fast DDS subscriber keeps after a few 12-MP images, with and without the optional
config/fastdds_dynamic_memory.xml profile (prints JSON).

    .venv/bin/python bench/bench_dds_memory.py [--big 3] [--small 20]

For each mode (rmw_fastrtps default, the DYNAMIC profile) a subscriber process is started; this process
publishes ``--big`` 4000x3000 rgb8 images (36 MB each, RELIABLE, depth 1) and then ``--small`` 640x480
ones. The subscriber reports its VmRSS before the first image, after the big ones and after the small
ones (when the big samples have left every history), and its VmHWM. With the default
PREALLOCATED_WITH_REALLOC policy the payload pools stay at the largest sample seen; with DYNAMIC they
are freed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_dynamic_memory.xml"


def _status_mb(key: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def subscriber(expected: int) -> None:
    """Child: count images on /bench/image, print JSON memory figures when ``expected`` arrived."""
    import gc

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_dds_memory_sub")
    state = {"count": 0, "after_big_mb": None}
    big = int(os.environ["BENCH_BIG"])

    def on_image(msg):
        state["count"] += 1
        if state["count"] == big:
            gc.collect()
            state["after_big_mb"] = _status_mb("VmRSS")

    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/bench/image", on_image, qos)
    baseline = _status_mb("VmRSS")
    print("READY", flush=True)
    while state["count"] < expected and rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.1)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    gc.collect()
    print(json.dumps({"baseline_rss_mb": round(baseline, 1), "after_big_rss_mb": round(state["after_big_mb"], 1),
                      "after_small_rss_mb": round(_status_mb("VmRSS"), 1), "peak_rss_mb": round(_status_mb("VmHWM"), 1),
                      "received": state["count"]}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def run_mode(profile: bool, big: int, small: int) -> dict:
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from da3_ros.ros_io import numpy_to_image

    env = dict(os.environ, BENCH_BIG=str(big))
    for key in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML"):
        env.pop(key, None)
    if profile:
        env.update(FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE), RMW_FASTRTPS_USE_QOS_FROM_XML="1")
    child = subprocess.Popen([sys.executable, __file__, "--subscriber", str(big + small)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "READY"
    rclpy.init()
    node = rclpy.create_node("bench_dds_memory_pub")
    pub = node.create_publisher(Image, "/bench/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    end = time.monotonic() + 20
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    rng = np.random.default_rng(0)
    big_msg = numpy_to_image(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8), "rgb8")
    small_msg = numpy_to_image(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), "rgb8")
    for i in range(big + small):
        pub.publish(big_msg if i < big else small_msg)
        for _ in range(10 if i < big else 2):   # RELIABLE depth 1: give each big sample time to arrive
            rclpy.spin_once(node, timeout_sec=0.05)
    out, _ = child.communicate(timeout=120)
    node.destroy_node()
    rclpy.shutdown()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=3)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--subscriber", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        subscriber(args.subscriber)
        return
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
    results = {"default_prealloc_with_realloc": run_mode(False, args.big, args.small),
               "fastdds_dynamic_memory_xml": run_mode(True, args.big, args.small)}
    print(json.dumps({"benchmark": "dds_subscriber_memory_after_12mp_images", "big_images": args.big,
                      "big_size": "4000x3000 rgb8", "small_images": args.small, "results": results,
                      "cpu": platform.processor() or platform.machine()}, indent=2))


if __name__ == "__main__":
    main()
