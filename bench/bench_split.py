"""Benchmark (issue 21 item 4): per-frame time of a sliding window, monolithic graph vs split graph with cached
keyframe tokens, fp32 and int8_dynamic, against the official eager forward. Prints one JSON object.

DA3-Small architecture with random weights (the official network, seed 0, saved in the released layout and
loaded by da3_ros, as bench/bench_backends.py does), ONNX Runtime CPU with fused attention (the backend's
session). For each window (N views of H x W) the same sequence of frames slides through the window: at every
frame each monolithic graph runs all N views, each split backend encodes only the new view (``view_keys`` = frame
indices) and runs the window graph, and the official forward (fp32, PyTorch eager) runs the N views. All
runtimes of one window alternate per frame in one process (contention hits all alike); one warm-up frame (which
also fills the caches); medians (and minima: the least contended frame) of ``--reps`` frames. The load average is
recorded before and after each window.

The full matrix of the issue is the default (N = 4, 6, 8; 280x504 and 378x504; fp32 and int8_dynamic);
``--quick`` runs N = 4 only (both sizes, both precisions)::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_split.py --quick --reps 3 --threads 2
    PYTHONPATH=$PWD .venv/bin/python bench/bench_split.py --views 4 6 8 --sizes 280x504 378x504 \
        --precisions fp32 int8_dynamic --reps 3 --threads 2

ONNX Runtime's kernels (MLAS) pick the instruction set at run time and cannot be capped, so this measures the
host's ISA only; ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA`` / ``MKL_ENABLE_INSTRUCTIONS`` cap the official
(PyTorch) side only, and the JSON records torch's capability.
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

QUICK = {"views": [4], "sizes": ["280x504", "378x504"], "precisions": ["fp32", "int8_dynamic"]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_flags() -> str:
    """The vector ISA flags of this host that matter for the kernels (avx2, avx512*, amx*)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                keep = [f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                                  "amx_bf16", "amx_int8", "amx_tile", "avx_vnni")]
                return " ".join(keep)
    except OSError:
        pass
    return ""


def loadavg() -> list:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def max_rel(got: dict, ref: dict) -> dict:
    import numpy as np

    return {k: float(np.max(np.abs(got[k] - v)) / np.max(np.abs(v))) for k, v in ref.items()}


def export_graphs(model, workdir: Path, views: int, height: int, width: int, precisions) -> dict:
    """{(kind, precision): path} of the monolithic and split exports of one window, written once."""
    from da3_ros.export.onnx_export import export_model_to_onnx

    paths = {}
    for precision in precisions:
        for kind, split in (("monolithic", False), ("split", True)):
            path = workdir / f"small_n{views}_{height}x{width}_{precision}_{kind}.onnx"
            if not path.with_suffix(".json").exists():
                export_model_to_onnx(model, path, views=views, height=height, width=width, verbose=False,
                                     split=split, precision=precision)
            paths[(kind, precision)] = path
    return paths


def bench_window(model, net, workdir: Path, views: int, height: int, width: int, precisions, reps: int,
                 threads: int) -> dict:
    import numpy as np
    import torch

    from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    paths = export_graphs(model, workdir, views, height, width, precisions)
    backends = {f"{kind}_{precision}": OnnxRuntimeBackend(str(path), num_threads=threads)
                for (kind, precision), path in paths.items()}
    frames = np.random.default_rng(1).integers(0, 256, size=(views + reps, height, width, 3), dtype=np.uint8)

    def official(window):
        with torch.inference_mode():
            return net(normalised(window))

    runners = {}
    for name, backend in backends.items():
        if name.startswith("split"):
            runners[name + "_cached"] = (lambda f, b=backend: b.infer(frames[f:f + views],
                                                                      view_keys=list(range(f, f + views))))
        else:
            runners[name] = (lambda f, b=backend: b.infer(frames[f:f + views]))
    runners["official_eager_fp32"] = lambda f: official(frames[f:f + views])
    load_before = loadavg()
    times = {k: [] for k in runners}
    last = {}
    for f in range(reps + 1):      # frame 0 is the warm-up (and fills the caches)
        for kind, run in runners.items():
            t0 = time.perf_counter()
            last[kind] = run(f)
            if f > 0:
                times[kind].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    official_s = med["official_eager_fp32"]
    result = {
        "views": views, "size": f"{height}x{width}", "loadavg_before": load_before, "loadavg_after": loadavg(),
        "per_frame_s": {k: round(v, 3) for k, v in med.items()},
        "per_frame_min_s": {k: round(min(v), 3) for k, v in times.items()},
        "raw_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "speedup_over_official": {k: round(official_s / v, 2) for k, v in med.items() if k != "official_eager_fp32"},
    }
    for precision in precisions:
        cached = last[f"split_{precision}_cached"]
        mono = last[f"monolithic_{precision}"]
        result[f"split_{precision}"] = {
            "encode_s": round(cached.timings["encode_s"], 3), "window_s": round(cached.timings["window_s"], 3),
            "encoded_views_per_frame": cached.timings["encoded_views"],
            "cached_over_monolithic": round(med[f"monolithic_{precision}"] / med[f"split_{precision}_cached"], 2),
            "split_vs_monolithic_max_rel": max_rel(cached.arrays(), mono.arrays())}
    if "fp32" in precisions and "int8_dynamic" in precisions:
        result["int8_vs_fp32_monolithic_max_rel"] = max_rel(last["monolithic_int8_dynamic"].arrays(),
                                                            last["monolithic_fp32"].arrays())
    for backend in backends.values():
        backend.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--sizes", nargs="+", default=["280x504", "378x504"], help="HxW ...")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8_dynamic"],
                        choices=["fp32", "int8_dynamic"])
    parser.add_argument("--quick", action="store_true", help="N=4 only, both sizes, both precisions")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bench_split")
    parser.add_argument("--output", default="", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.views, args.sizes, args.precisions = QUICK["views"], QUICK["sizes"], QUICK["precisions"]
    import onnxruntime
    import torch
    from safetensors.torch import load_file

    from da3_ros.model import load_model, save_checkpoint

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "da3-small"
    if not (checkpoint / "model.safetensors").exists():
        save_checkpoint(official_model("da3-small"), checkpoint, "da3-small")
    net = official_model("da3-small")
    state = {k[len("model."):]: v for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    net.load_state_dict(state, strict=False)
    t0 = time.perf_counter()
    results = []
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        model = load_model(str(checkpoint), device="cpu").float().eval()
        for n in args.views:
            results.append(bench_window(model, net, workdir, n, height, width, args.precisions, args.reps,
                                        args.threads))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        del model
    report = {
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "threads": args.threads,
        "variant": "da3-small (random weights)", "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "onnxruntime": onnxruntime.__version__,
        "reps": args.reps, "results": results, "bench_s": round(time.perf_counter() - t0, 1)}
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
