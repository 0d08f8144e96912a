"""Benchmark (issue 21 item 4): per-frame time of a sliding window, monolithic graph vs split graph with cached
keyframe tokens, against the official eager forward. Prints one JSON object.

DA3-Small architecture with random weights (the official network, seed 0, saved in the released layout and
loaded by da3_ros, as bench/bench_backends.py does), fp32, ONNX Runtime CPU with fused attention. For each N
the same sequence of frames slides through the window: at every frame the monolithic graph runs all N views,
the split backend encodes only the new view (``view_keys`` = frame indices) and runs the window graph, and the
official forward runs the N views. Runtimes alternate per frame (contention hits all alike); one warm-up frame;
medians of ``--reps`` frames.

    .venv/bin/python bench/bench_split.py --views 4 6 8 --size 280x504 --reps 3 --threads 2
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backends import normalised, official_model  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def bench_views(workdir: Path, checkpoint: Path, views: int, height: int, width: int, reps: int, threads: int):
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.model import load_model

    model = load_model(str(checkpoint), device="cpu").float().eval()
    paths = {}
    for kind, split in (("monolithic", False), ("split", True)):
        paths[kind] = workdir / f"small_n{views}_{height}x{width}_{kind}.onnx"
        export_model_to_onnx(model, paths[kind], views=views, height=height, width=width, verbose=False,
                             split=split)
    del model
    mono = OnnxRuntimeBackend(str(paths["monolithic"]), num_threads=threads)
    split = OnnxRuntimeBackend(str(paths["split"]), num_threads=threads)
    net = official_model("da3-small")
    state = {k[len("model."):]: v for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    net.load_state_dict(state, strict=False)
    frames = np.random.default_rng(1).integers(0, 256, size=(views + reps, height, width, 3), dtype=np.uint8)

    def official(window):
        with torch.inference_mode():
            return net(normalised(window))

    runners = {
        "onnxruntime_monolithic": lambda f: mono.infer(frames[f:f + views]),
        "onnxruntime_split_cached": lambda f: split.infer(frames[f:f + views], view_keys=list(range(f, f + views))),
        "official_eager": lambda f: official(frames[f:f + views]),
    }
    times = {k: [] for k in runners}
    last = {}
    for f in range(reps + 1):      # frame 0 is the warm-up (and fills the cache)
        for kind, run in runners.items():
            t0 = time.perf_counter()
            last[kind] = run(f)
            if f > 0:
                times[kind].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    got, ref = last["onnxruntime_split_cached"], last["onnxruntime_monolithic"]
    parity = {k: float(np.max(np.abs(got.arrays()[k] - v)) / np.max(np.abs(v))) for k, v in ref.arrays().items()}
    return {
        "views": views, "size": f"{height}x{width}",
        "per_frame_s": {k: round(v, 3) for k, v in med.items()},
        "raw_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "split_encode_s": round(got.timings["encode_s"], 3), "split_window_s": round(got.timings["window_s"], 3),
        "split_encoded_views_per_frame": got.timings["encoded_views"],
        "speedup_over_official": {
            "monolithic": round(med["official_eager"] / med["onnxruntime_monolithic"], 2),
            "split_cached": round(med["official_eager"] / med["onnxruntime_split_cached"], 2)},
        "split_cached_over_monolithic": round(med["onnxruntime_monolithic"] / med["onnxruntime_split_cached"], 2),
        "split_vs_monolithic_max_rel": parity,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, nargs="+", default=[4])
    parser.add_argument("--size", default="280x504", help="HxW")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bench_split")
    args = parser.parse_args(argv)
    import torch

    from da3_ros.model import save_checkpoint

    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split("x"))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "da3-small"
    if not (checkpoint / "model.safetensors").exists():
        save_checkpoint(official_model("da3-small"), checkpoint, "da3-small")
    t0 = time.perf_counter()
    results = [bench_views(workdir, checkpoint, n, height, width, args.reps, args.threads) for n in args.views]
    import onnxruntime

    print(json.dumps({
        "cpu": cpu_model(), "threads": args.threads, "precision": "fp32", "variant": "da3-small (random weights)",
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "results": results,
        "bench_s": round(time.perf_counter() - t0, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
