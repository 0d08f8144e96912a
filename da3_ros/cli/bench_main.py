"""``da3-bench``: per-stage latency of the node pipeline for each available backend.

For every window size N and processing size, one DA3 model with random weights (seed 0) is used by
every runtime: it is exported to ONNX (cached), loaded by each backend (``onnxruntime``, ``torch``
= our PyTorch model, ``tensorrt`` where importable) and by the official ``depth_anything_3``
network (when installed: the reference of the ratios). In ONE process, frames of the synthetic
640x480 sequence go through the full per-frame pipeline (decode, preprocess, inference, alignment,
post-process, cloud, message packing + publish serialisation), the backends alternating with an
official forward of the same window so that the ratio is measured side by side. Prints a markdown
table; writes the JSON to ``--output``. Random weights: timings are representative, outputs not.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def _parse_sizes(text: str):
    sizes = []
    for item in text.split(","):
        h, w = item.lower().split("x")
        sizes.append((int(h), int(w)))
    return sizes


def _median_ms(values):
    return round(1e3 * statistics.median(values), 2) if values else None


def _official(variant: str, views: int, height: int, width: int, threads: int):
    """A zero-argument callable timing one official forward, or (None, reason)."""
    try:
        import torch
        from depth_anything_3.cfg import create_object, load_config
        from depth_anything_3.registry import MODEL_REGISTRY
    except ImportError as exc:
        return None, f"official depth_anything_3 not importable ({exc})"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = create_object(load_config(MODEL_REGISTRY[variant])).eval()
    x = torch.randn(1, views, 3, height, width)

    def run():
        with torch.inference_mode():
            net(x)
    return run, ""


def _backends(kinds, onnx_path, checkpoint, views, height, width, threads):
    from da3_ros.backends import BackendUnavailableError
    from da3_ros.backends.factory import create_backend

    made, skipped = {}, {}
    for kind in kinds:
        try:
            if kind == "torch":
                made[kind] = create_backend("torch", model_file_path=str(checkpoint), views=views, height=height,
                                            width=width, ref_view="first", num_threads=threads)
            elif kind == "onnxruntime":
                made[kind] = create_backend("onnxruntime", model_file_path=str(onnx_path), views=views,
                                            height=height, width=width, ref_view="first", num_threads=threads)
            elif kind == "tensorrt":
                made[kind] = create_backend("tensorrt", model_file_path=str(onnx_path),
                                            engine_file_path=str(Path(onnx_path).with_suffix(".engine")),
                                            views=views, height=height, width=width, ref_view="first",
                                            precision="fp16", device="cuda")
        except (BackendUnavailableError, ImportError, RuntimeError, ValueError) as exc:
            skipped[kind] = str(exc).splitlines()[0]
    return made, skipped


def _prepare_model(cache: Path, variant: str, views: int, height: int, width: int):
    """Random-weight checkpoint (HF layout) + its ONNX export, cached."""
    import torch

    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.model import build_model

    ckpt = cache / f"{variant}-random-seed0"
    torch.manual_seed(0)
    model = None
    if not (ckpt / "model.safetensors").exists():
        from da3_ros.model import save_checkpoint

        model = build_model(variant)
        save_checkpoint(model, ckpt, variant)
    onnx_path = cache / f"{variant}-random-seed0_n{views}_{height}x{width}_first.onnx"
    if not onnx_path.exists():
        from da3_ros.model import load_model

        model = load_model(str(ckpt))
        export_model_to_onnx(model, onnx_path, views=views, height=height, width=width, ref_view="first",
                             checkpoint=str(ckpt), verbose=False)
    return ckpt, onnx_path


def run_bench(args) -> dict:
    import torch
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: F401  (message classes load once)
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from da3_ros.geometry.camera import PinholeCamera
    from da3_ros.pipeline.camera_stream import CameraFrame
    from da3_ros.pipeline.processor_config import ProcessorConfig
    from da3_ros.pipeline.window_processor import WindowProcessor
    from da3_ros.node.output_messages import camera_frame_messages
    from da3_ros.ros_io import image_to_rgb, numpy_to_image
    from da3_ros.synthetic.sequence import SyntheticSequence

    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    seq = SyntheticSequence(width=640, height=480)
    frames = [numpy_to_image(seq.render(i)[0], "rgb8", header=Header(frame_id="cam"))
              for i in range(0, 3 * (args.frames + 2), 3)]
    cam = PinholeCamera(640, 480, seq.K)
    rows, skipped_all = [], {}
    for height, width in _parse_sizes(args.sizes):
        for views in [int(v) for v in args.views.split(",")]:
            print(f"[da3-bench] {args.variant} N={views} {height}x{width}", file=sys.stderr, flush=True)
            ckpt, onnx_path = _prepare_model(cache, args.variant, views, height, width)
            backends, skipped = _backends(args.backends.split(","), onnx_path, ckpt, views, height, width,
                                          args.threads)
            skipped_all.update({f"{k} N={views} {height}x{width}": v for k, v in skipped.items()})
            official, why = _official(args.variant, views, height, width, args.threads) if args.official \
                else (None, "disabled")
            stages = {k: {s: [] for s in ("decode", "preprocess", "inference", "alignment", "postprocess",
                                          "cloud", "publish")} for k in backends}
            processors = {k: WindowProcessor(b, ProcessorConfig(point_stride=2))   # window from the backend
                          for k, b in backends.items()}
            official_times = []
            if official is not None:
                official()   # warm-up
            for i, msg in enumerate(frames):
                for kind, proc in processors.items():
                    t0 = time.perf_counter()
                    rgb = image_to_rgb(msg)
                    decode = time.perf_counter() - t0
                    out = proc.process([CameraFrame(rgb, 10**9 + i * 10**8, cam)])
                    t1 = time.perf_counter()
                    for m in camera_frame_messages(out.reference, Header(frame_id="cam")).values():
                        serialize_message(m)   # what rclpy's publish() does before handing to DDS
                    publish = time.perf_counter() - t1
                    if i < 2:
                        continue   # warm-up
                    s = stages[kind]
                    s["decode"].append(decode)
                    s["publish"].append(publish)
                    for key in ("preprocess", "inference", "alignment", "postprocess", "cloud"):
                        s[key].append(out.stage_seconds.get(key, 0.0))
                if official is not None and i >= 2:
                    t0 = time.perf_counter()
                    official()
                    official_times.append(time.perf_counter() - t0)
            official_ms = _median_ms(official_times)
            for kind, s in stages.items():
                med = {k: _median_ms(v) for k, v in s.items()}
                row = {"backend": kind, "variant": args.variant, "views": views, "height": height, "width": width,
                       "stages_ms": med, "total_ms": round(sum(v for v in med.values() if v), 2),
                       "official_forward_ms": official_ms,
                       "inference_speedup_vs_official": round(official_ms / med["inference"], 3)
                       if official_ms and med["inference"] else None,
                       "official_note": why}
                rows.append(row)
                print(f"[da3-bench]   {kind}: inference {med['inference']} ms, official {official_ms} ms",
                      file=sys.stderr, flush=True)
            for b in backends.values():
                b.close()
    return {"benchmark": "da3-bench pipeline stages", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads, "frames": args.frames, "camera": "640x480 synthetic",
            "torch": torch.__version__, "weights": "random (seed 0)", "rows": rows, "skipped": skipped_all}


def markdown(result: dict) -> str:
    lines = ["| backend | N | size | decode | preprocess | inference | alignment | postprocess | cloud | publish | "
             "total ms | official fwd ms | speed-up |", "|" + "---|" * 13]
    for r in result["rows"]:
        s = r["stages_ms"]
        lines.append(f"| {r['backend']} | {r['views']} | {r['height']}x{r['width']} | {s['decode']} | "
                     f"{s['preprocess']} | {s['inference']} | {s['alignment']} | {s['postprocess']} | {s['cloud']} | "
                     f"{s['publish']} | {r['total_ms']} | {r['official_forward_ms']} | "
                     f"{r['inference_speedup_vs_official']} |")
    for k, v in result["skipped"].items():
        lines.append(f"\nskipped {k}: {v}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="da3-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON output file")
    p.add_argument("--variant", default="da3-small")
    p.add_argument("--views", default="1,2,4,8", help="window sizes N (default 1,2,4,8)")
    p.add_argument("--sizes", default="280x378,504x504", help="processing sizes HxW (default 280x378,504x504)")
    p.add_argument("--backends", default="onnxruntime,torch,tensorrt")
    p.add_argument("--frames", type=int, default=5, help="timed frames per configuration (after 2 warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-official", dest="official", action="store_false", help="skip the official forward")
    p.add_argument("--cache-dir", default=".cache/da3_ros/bench")
    args = p.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    stdout, sys.stdout = sys.stdout, sys.stderr   # the official package logs to stdout; keep it for the table
    try:
        result = run_bench(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"da3-bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
