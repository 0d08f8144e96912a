"""``da3-demo``: the main job, end to end (see README "Quick start" and da3_ros/demo)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="da3-demo",
        description="Run da3_node end to end over DDS on a camera sequence and write a report: depth "
                    "colormaps, trajectory plot, fused cloud (PLY), MCAP bag, report.md/json. Default input: "
                    "the built-in synthetic room with ground truth.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="a video file (e.g. robot_unitree.mp4)")
    src.add_argument("--images", help="a folder of .png/.jpg images")
    src.add_argument("--bag", help="a rosbag2 (MCAP or sqlite3) with a sensor_msgs/Image topic")
    p.add_argument("--checkpoint", help="DA3 checkpoint (HF dir with config.json + model.safetensors, file, or "
                   "repo id); default: DA3-SMALL from the hub if reachable, else random weights (with a banner)")
    p.add_argument("--model", help="an already exported .onnx (with its sidecar); skips the export")
    p.add_argument("--oracle", action="store_true", help="replace the network by the ground-truth window "
                   "oracle (synthetic input only; never the default)")
    p.add_argument("--camera-path", default="robot_tour",
                   help="synthetic input: robot_tour (default: the robot, with its TF and wheel odometry) or a "
                        "camera-only path of da3_ros.synthetic (e.g. room_tour)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--frames", type=int, default=100, help="frames to publish (default 100)")
    p.add_argument("--stride", type=int, default=0, help="use every n-th input frame (default 3 synthetic, 1 else)")
    p.add_argument("--rate", type=float, default=2.0,
                   help="publish rate in Hz (default 2; the node drops what it cannot process)")
    p.add_argument("--views", type=int, default=4, help="window size N (default 4)")
    p.add_argument("--network-height", type=int, default=280, help="network input height (default 280)")
    p.add_argument("--network-width", type=int, default=0, help="network input width (default: input aspect)")
    p.add_argument("--cache-dir", default=".cache/da3_ros", help="where exported models are cached")
    p.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from da3_ros.demo.runner import DemoOptions, run_demo

    opts = DemoOptions(output=Path(args.output), video=args.video, images=args.images, bag=args.bag,
                       checkpoint=args.checkpoint, model=args.model, oracle=args.oracle, frames=args.frames,
                       stride=args.stride, rate_hz=args.rate, views=args.views, network_height=args.network_height,
                       network_width=args.network_width, cache_dir=Path(args.cache_dir), num_threads=args.threads,
                       camera_path=args.camera_path, quiet=args.quiet)
    try:
        report = run_demo(opts)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"da3-demo: error: {exc}", file=sys.stderr)
        return 1
    acc = report["accounting"]
    print(f"[da3-demo] wrote {opts.output}/report.md: published {acc['published_by_player']}, processed "
          f"{acc['processed']}, dropped {acc['dropped']} (adds up: {acc['adds_up']}); "
          f"depth AbsRel {report['depth_quality']['abs_rel_mean']}; trajectory {report['trajectory']}")
    for banner in report.get("banners", []):
        print(f"[da3-demo] NOTE: {banner}")
    return 0 if acc["adds_up"] and report.get("node_exit_code") in (0, None, -2) else 2


if __name__ == "__main__":
    sys.exit(main())
