"""Soak test of da3_node (prints JSON): pushes many small frames through the running node process
as fast as DDS takes them and samples the node's RSS over time.

    .venv/bin/python bench/soak_node.py [--frames 10000] [--size 64x48] [--rate 0 (= max)]

The node runs a reduced DA3 graph (random weights, N=2 at 56x70) on ONNX Runtime, so inference is
cheap and the node's own bookkeeping (mailbox, tracker, path, map, diagnostics) dominates. Reports:
RSS samples, growth after warm-up (first 10 % of frames), and the node's frame accounting
(received = processed + dropped, no failed frames).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--size", default="64x48", help="camera WxH")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="publish rate in Hz (default 100: far above what the node processes, below what "
                             "RELIABLE DDS delivers without overwriting its history)")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(np.random.default_rng().integers(101, 200)))
    w, h = (int(v) for v in args.size.split("x"))

    from da3_ros.demo.player_recorder import PlayerRecorder
    from da3_ros.demo.runner import DemoOptions, _node_command, write_params
    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.export.reduced_config import reduced_model

    tmp = Path(tempfile.mkdtemp(prefix="da3_soak_"))
    onnx_path = tmp / "reduced.onnx"
    export_model_to_onnx(reduced_model("multi_view"), onnx_path, views=2, height=56, width=70, ref_view="first",
                         verbose=False)
    params = write_params(tmp, dict(backend="onnxruntime", model_file_path=str(onnx_path), window_size=2,
                                    network_height=56, network_width=70, ref_view="first", num_threads=1,
                                    publish_map_points=True, map_max_points=20000, path_max_length=500,
                                    qos_depth=100, diagnostics_period_s=1.0), DemoOptions(output=tmp, num_threads=1))
    log = open(tmp / "node.log", "wb")
    node = subprocess.Popen(_node_command(params), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pr = PlayerRecorder("/da3")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    K = np.array([[0.8 * w, 0, (w - 1) / 2], [0, 0.8 * w, (h - 1) / 2], [0, 0, 1.0]])
    samples = []
    try:
        if not pr.spin_until(pr.node_ready, 120):
            raise RuntimeError("node did not come up")
        pr.recording.messages.clear()
        t0, last_sample = time.monotonic(), 0.0
        for k in range(args.frames):
            frame = np.roll(base, k % w, axis=1)   # a panning camera
            pr.publish(frame, K, 10**9 + k * 10**7, "cam")
            pr.recording.messages.clear()          # keep the player's memory flat
            pr.spin_for(max(0.0, t0 + (k + 1) / args.rate - time.monotonic()))
            now = time.monotonic()
            if now - last_sample >= 1.0:
                last_sample = now
                samples.append({"t_s": round(now - t0, 1), "frames_sent": k + 1, "rss_mb": round(rss_mb(node.pid), 1)})

        def settled(state={"received": -1, "since": time.monotonic()}):
            received = int(pr.last_diagnostics.get("received", -1))
            if received != state["received"]:
                state.update(received=received, since=time.monotonic())
            return received == args.frames or (int(pr.last_diagnostics.get("pending", 1)) == 0
                                               and time.monotonic() - state["since"] > 5.0)
        pr.spin_until(settled, 120)
        samples.append({"t_s": round(time.monotonic() - t0, 1), "frames_sent": args.frames,
                        "rss_mb": round(rss_mb(node.pid), 1)})
        alive = node.poll() is None
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGINT)
            node.wait(timeout=20)
        log.close()
        pr.close()
    d = pr.last_diagnostics
    warm = [s for s in samples if s["frames_sent"] >= args.frames * 0.1]
    growth = warm[-1]["rss_mb"] - warm[0]["rss_mb"] if len(warm) >= 2 else float("nan")
    result = {
        "benchmark": "node_soak", "frames": args.frames, "camera": f"{w}x{h}", "model": "reduced DA3 N=2 56x70 ORT",
        "duration_s": samples[-1]["t_s"] if samples else None,
        "rss_first_after_warmup_mb": warm[0]["rss_mb"] if warm else None,
        "rss_last_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_growth_after_warmup_mb": round(growth, 1), "rss_growth_limit_mb": 50,
        "node_alive_at_end": alive,
        "sent": args.frames, "lost_in_transport": args.frames - int(d.get("received", 0)),
        "received": int(d.get("received", -1)), "processed": int(d.get("processed", -1)),
        "dropped": int(d.get("dropped", -1)), "pending": int(d.get("pending", -1)),
        "dropped_failed": int(d.get("dropped_failed", -1)), "dropped_bad_input": int(d.get("dropped_bad_input", -1)),
        "last_error": d.get("last_error", ""),
        "adds_up": int(d.get("received", -1)) == int(d.get("processed", 0)) + int(d.get("dropped", 0))
        + int(d.get("pending", 0)),
        "rss_samples": samples[:: max(1, len(samples) // 40)],
    }
    print(json.dumps(result, indent=2))
    return 0 if result["adds_up"] and alive and growth < 50 and result["dropped_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
