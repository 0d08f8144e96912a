"""Benchmark of the node's per-frame work (prints JSON).

    .venv/bin/python bench/bench_node.py overhead [--frames 60]
    .venv/bin/python bench/bench_node.py latency --model FILE.onnx [--rate 10] [--frames 100]

``overhead``: everything the node does per 640x480 frame EXCEPT the network: decode (rgb8 Image ->
RGB), preprocess (resize/crop to the network), window alignment (tracker), post-process to camera
resolution, point cloud, message packing and publishing (rclpy, one subscriber in another context).
The inference itself runs on the oracle backend (ground truth; its time is excluded from the sum).

``latency``: the real node process with an exported model, fed 640x480 synthetic frames at
``--rate`` Hz over DDS; reports the node's stamp->publish latency percentiles, processed rate and
frame accounting (the demo runner does the plumbing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _stats(samples):
    a = np.asarray(samples) * 1e3
    return {"median_ms": round(float(np.median(a)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def overhead(frames: int) -> dict:
    import rclpy
    from rclpy.context import Context
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header

    from da3_ros.geometry.camera import PinholeCamera
    from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec
    from da3_ros.pipeline.camera_stream import CameraFrame
    from da3_ros.pipeline.processor_config import ProcessorConfig
    from da3_ros.pipeline.window_processor import WindowProcessor
    from da3_ros.node.output_messages import camera_frame_messages
    from da3_ros.ros_io import image_to_rgb, numpy_to_image
    from da3_ros.synthetic.sequence import SyntheticSequence

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    seq = SyntheticSequence(width=640, height=480)
    rendered = {i: seq.render(i)[0] for i in range(0, 3 * frames, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_oracle_spec(Path(tmp) / "spec.json", rendered, width=640, height=480)
        backend = OracleBackend(str(spec), views=4, height=480, width=640)
    processor = WindowProcessor(backend, ProcessorConfig(point_stride=2))   # window from the backend
    cam = PinholeCamera(640, 480, seq.K)
    msgs = [numpy_to_image(rgb, "rgb8", header=Header(frame_id="cam")) for rgb in rendered.values()]

    ctx_pub, ctx_sub = Context(), Context()
    rclpy.init(context=ctx_pub)
    rclpy.init(context=ctx_sub)
    pub_node = rclpy.create_node("bench_pub", context=ctx_pub)
    sub_node = rclpy.create_node("bench_sub", context=ctx_sub)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    types = {"depth": Image, "confidence": Image, "depth_info": CameraInfo, "points": PointCloud2}
    pubs = {name: pub_node.create_publisher(t, f"bench/{name}", qos) for name, t in types.items()}
    for name, t in types.items():
        sub_node.create_subscription(t, f"bench/{name}", lambda m: None, qos)
    time.sleep(1.0)
    stages = {k: [] for k in ("decode", "preprocess", "alignment", "postprocess", "cloud", "pack", "publish")}
    totals, overheads = [], []
    for k, msg in enumerate(msgs):
        t0 = time.perf_counter()
        rgb = image_to_rgb(msg)
        t_decode = time.perf_counter() - t0
        out = processor.process([CameraFrame(rgb, 10**9 + k * 10**8, cam)])
        t1 = time.perf_counter()
        header = Header(frame_id="cam")
        packed = camera_frame_messages(out.reference, header)
        t2 = time.perf_counter()
        for name, m in packed.items():
            pubs[name].publish(m)
        t3 = time.perf_counter()
        if k < 3:
            continue   # warm-up (first windows, caches)
        s = out.stage_seconds
        row = {"decode": t_decode, "preprocess": s["preprocess"], "alignment": s["alignment"],
               "postprocess": s["postprocess"], "cloud": s["cloud"], "pack": t2 - t1, "publish": t3 - t2}
        for key, v in row.items():
            stages[key].append(v)
        totals.append(sum(row.values()))
        overheads.append(sum(v for key, v in row.items() if key != "alignment"))
    pub_node.destroy_node()
    sub_node.destroy_node()
    rclpy.shutdown(context=ctx_pub)
    rclpy.shutdown(context=ctx_sub)
    return {"benchmark": "node_overhead_excluding_inference", "resolution": "640x480", "window": 4,
            "point_stride": 2, "frames_measured": len(totals), "stages": {k: _stats(v) for k, v in stages.items()},
            "overhead_excluding_inference_and_alignment": _stats(overheads), "target_median_ms": 5.0,
            "total_including_alignment": _stats(totals),
            "note": "alignment (the tracker, issue #5, own budget 10 ms) runs here at the oracle's 640x480 "
                    "network resolution; with a real engine it sees the network size (e.g. 280x378)"}


def latency(model: str, rate: float, frames: int) -> dict:
    from da3_ros.demo.runner import DemoOptions, run_demo

    with tempfile.TemporaryDirectory() as tmp:
        report = run_demo(DemoOptions(output=Path(tmp), model=model, frames=frames, rate_hz=rate, stride=1,
                                      synthetic_width=640, synthetic_height=480, quiet=True))
    acc = report["accounting"]
    lat = report["latency_ms"]
    return {"benchmark": "node_end_to_end_latency", "input": "640x480 synthetic, RELIABLE over DDS",
            "rate_hz": rate, "model": report["model"], "network": report["network"], "views": report["views"],
            "published": acc["published_by_player"], "processed": acc["processed"], "dropped": acc["dropped"],
            "processed_rate_hz": float(report["node_diagnostics"].get("processed_rate_hz", "nan")),
            "latency_stamp_to_publish_ms": lat.get("latency_stamp_to_publish"),
            "inference_ms": lat.get("inference")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--frames", type=int, default=60)
    p = sub.add_parser("latency")
    p.add_argument("--model", required=True, help="exported .onnx (e.g. from `da3-export onnx` or the demo cache)")
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    result = overhead(args.frames) if args.mode == "overhead" else latency(args.model, args.rate, args.frames)
    result.update(machine=f"{platform.machine()} {os.cpu_count()} cores", python=sys.version.split()[0])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
