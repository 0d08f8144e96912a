#!/usr/bin/env python3
"""Benchmark: ONNX Runtime (exported graph) vs the official PyTorch forward (and our PyTorch model)
on DA3-Small, CPU, 2 threads. Prints one JSON document (also written to --output).

For each window size (default N=4 at 504x504 and 280x504):
1. The official network with random weights (seed 0) is saved in the released HF layout and
   exported with ``da3-export onnx`` in a child process (its peak RSS = export peak memory).
2. In ONE process, after one warm-up each, the runtimes are timed alternately (ORT, ORT without
   attention fusion, official, ours, ORT, ...) on the same uint8 window; medians and ratios are
   reported, plus the max relative difference of ORT vs official per output.
3. Peak RSS of inference is measured per runtime in separate child processes (load + 2 runs).
4. Roofline: the FLOPs of one window (ours = the exported graph; official = with its unused ray
   branch) and this machine's fp32 matmul peak (2048^2 matmul, best of 5, before and after), so each
   runtime's achieved GFLOP/s and the fastest possible fp32 time are in the JSON.
Random weights: timings/memory are representative, outputs are not meaningful.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: reset at exec, unlike ru_maxrss, which a child
    started by fork+exec inherits from its parent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def official_model(variant: str, seed: int = 0):
    import torch
    from depth_anything_3.cfg import create_object, load_config
    from depth_anything_3.registry import MODEL_REGISTRY

    torch.manual_seed(seed)
    return create_object(load_config(MODEL_REGISTRY[variant])).eval()


def window(views: int, height: int, width: int, seed: int = 0):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size=(views, height, width, 3), dtype=np.uint8)


def normalised(images):
    import torch

    from da3_ros.model import normalize_uint8_images

    return normalize_uint8_images(torch.from_numpy(images)[None])


def make_runners(kind: str, onnx_path: str, checkpoint: str, variant: str, views: int, height: int, width: int,
                 threads: int):
    """Return a zero-argument callable running one window with the given runtime -> dict of arrays."""
    import torch

    torch.set_num_threads(threads)
    images = window(views, height, width)
    if kind in ("onnxruntime", "onnxruntime_unfused"):
        from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(onnx_path, num_threads=threads, fused_attention=kind == "onnxruntime")
        return lambda: backend.infer(images).arrays()
    if kind == "onnxruntime_int8_dynamic":  # the --precision int8_dynamic graph, attention fused at load
        from da3_ros.backends.onnxruntime_backend import create_session

        session, _ = create_session(int8_dynamic_graph(onnx_path), num_threads=threads, fused_attention=True)
        names = [o.name for o in session.get_outputs()]
        return lambda: dict(zip(names, (v[0] for v in session.run(names, {"images": images[None]}))))
    if kind == "official":
        from safetensors.torch import load_file

        net = official_model(variant)
        state = {k[len("model."):]: v for k, v in load_file(str(Path(checkpoint) / "model.safetensors")).items()}
        net.load_state_dict(state, strict=False)
        x = normalised(images)

        def run():
            with torch.inference_mode():
                out = net(x)
            return {k: v[0].numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}

        return run
    if kind == "ours_torch":
        from da3_ros.backends.torch_backend import TorchBackend

        backend = TorchBackend(checkpoint, views=views, height=height, width=width, num_threads=threads)
        return lambda: backend.infer(images).arrays()
    raise ValueError(kind)


def int8_dynamic_graph(onnx_path: str) -> str:
    """The fp32 export with its backbone block weights in int8, as ``da3-export onnx --precision
    int8_dynamic`` writes it (da3_ros.export.int8_quantization). Written once next to ``onnx_path``."""
    from da3_ros.export.int8_quantization import quantize_int8_dynamic

    out = Path(onnx_path).with_name(Path(onnx_path).stem + "_int8_dynamic.onnx")
    if not out.exists():
        quantize_int8_dynamic(onnx_path, out)
    return str(out)


class count_attention_flops:
    """Context manager adding the FLOPs of every ``F.scaled_dot_product_attention`` call (which
    torch's FlopCounterMode does not see on the CPU) into ``self.flops``."""

    def __enter__(self):
        import torch.nn.functional as F

        self.flops, self._original = 0, F.scaled_dot_product_attention

        def counted(q, k, v, *args, **kwargs):
            batch_heads = q.numel() // (q.shape[-2] * q.shape[-1])
            self.flops += 2 * batch_heads * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
            return self._original(q, k, v, *args, **kwargs)

        F.scaled_dot_product_attention = counted
        return self

    def __exit__(self, *exc):
        import torch.nn.functional as F

        F.scaled_dot_product_attention = self._original


def window_gflop(kind: str, checkpoint: str, variant: str, views: int, height: int, width: int) -> float:
    """FLOPs (1 multiply-add = 2) of one forward: ``ours`` (what the ONNX graph computes) or
    ``official`` (DepthAnything3Net.forward, incl. its ray branch)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    images = normalised(window(views, height, width))
    if kind == "official":
        net = official_model(variant)
        forward = lambda: net(images)  # noqa: E731
    else:
        from da3_ros.model import load_model

        net = load_model(str(checkpoint), device="cpu").eval()
        net.prepare(height, width)
        forward = lambda: net(images)  # noqa: E731
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), count_attention_flops() as attention, counter:
        forward()
    return (counter.get_total_flops() + attention.flops) / 1e9


def matmul_peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of one ``size``^2 matmul with ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def child_main(args) -> None:
    """Child process: export (``--child export``) or load + run twice; print peak RSS as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.child == "export":
        from da3_ros.cli.export_main import main as export_main

        rc = export_main(["onnx", "--checkpoint", args.checkpoint, "--views", str(args.views), "--height",
                          str(args.height), "--width", str(args.width), "--output", args.onnx, "--quiet"])
        if rc != 0:
            sys.exit(rc)
        print(json.dumps({"export_s": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}))
        return
    run = make_runners(args.child, args.onnx, args.checkpoint, args.variant, args.views, args.height, args.width,
                       args.threads)
    rss_loaded = peak_rss_mb()
    for _ in range(2):
        run()
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_load_mb": round(rss_loaded, 1)}))


def run_child(child: str, **kw) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child]
    for key, value in kw.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"child {child} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed_reps(runners: dict, reps: int) -> tuple:
    """``reps`` rounds over all runners, alternating so that CPU contention hits all alike.

    Returns:
        ``(times, cpu)``: per kind, the wall seconds of each run and its CPU seconds per wall second.
    """
    times = {kind: [] for kind in runners}
    cpu = {kind: [] for kind in runners}
    for _ in range(reps):
        for kind, run in runners.items():
            c0, t0 = time.process_time(), time.perf_counter()
            run()
            dt = time.perf_counter() - t0
            times[kind].append(dt)
            cpu[kind].append((time.process_time() - c0) / dt)
    return times, cpu


def parity_vs_official(outputs: dict) -> tuple:
    """Max relative difference of each output to the official network's.

    Returns:
        ``(parity, parity_other)``: onnxruntime's ``{output: rel}``, and ``{kind: {output: rel}}`` of the
        other runtimes (neither the official one nor the unfused graph); both empty without "official".
    """
    import numpy as np

    parity, parity_other = {}, {}
    for kind in outputs:
        if "official" not in outputs or kind in ("official", "onnxruntime_unfused"):
            continue
        target = parity if kind == "onnxruntime" else parity_other.setdefault(kind, {})
        for name, ref in outputs["official"].items():
            got = outputs[kind].get(name)
            if got is not None:
                target[name] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    return parity, parity_other


#: (result key, numerator runtime, denominator runtime): median-time ratios reported when both ran
SPEEDUPS = (
    ("speedup_ort_over_official", "official", "onnxruntime"),
    ("speedup_ort_unfused_over_official", "official", "onnxruntime_unfused"),
    ("speedup_ort_int8_dynamic_over_official", "official", "onnxruntime_int8_dynamic"),
    ("attention_fusion_speedup", "onnxruntime_unfused", "onnxruntime"),
    ("ratio_ours_torch_over_official", "ours_torch", "official"),
)


def speedup_ratios(med: dict, fp32_lower_bound_s: float) -> dict:
    """The speedup entries of a result: the best possible one over the official network, then ``SPEEDUPS``."""
    ratios = {}
    if "official" in med:
        ratios["best_possible_fp32_speedup_over_official"] = round(med["official"] / fp32_lower_bound_s, 2)
    for key, num, den in SPEEDUPS:
        if num in med and den in med:
            ratios[key] = round(med[num] / med[den], 2)
    return ratios


def bench_config(workdir: Path, variant: str, views: int, height: int, width: int, reps: int, threads: int,
                 runtimes) -> dict:
    checkpoint = workdir / variant
    if not (checkpoint / "model.safetensors").exists():
        from da3_ros.model import save_checkpoint

        save_checkpoint(official_model(variant), checkpoint, variant)
    onnx_path = workdir / f"{variant}_n{views}_{height}x{width}.onnx"
    common = dict(checkpoint=checkpoint, onnx=onnx_path, variant=variant, views=views, height=height, width=width,
                  threads=threads)
    export = run_child("export", **common)
    memory = {kind: run_child(kind, **common) for kind in runtimes}
    runners = {kind: make_runners(kind, str(onnx_path), str(checkpoint), variant, views, height, width, threads)
               for kind in runtimes}
    peak_before = matmul_peak_gflops(threads)
    outputs = {kind: run() for kind, run in runners.items()}  # warm-up (and outputs for the parity line)
    times, cpu = timed_reps(runners, reps)
    med = {kind: statistics.median(v) for kind, v in times.items()}
    gflop = {"ours": window_gflop("ours", checkpoint, variant, views, height, width)}
    if "official" in runtimes:
        gflop["official"] = window_gflop("official", checkpoint, variant, views, height, width)
    peak = max(peak_before, matmul_peak_gflops(threads))
    parity, parity_other = parity_vs_official(outputs)
    result = {
        "variant": variant, "views": views, "height": height, "width": width, "reps": reps,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "median_cpu_per_wall": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "export": export,
        "onnx_mb": round(onnx_path.stat().st_size / 1e6, 1),
        "inference_peak_rss_mb": {k: v["peak_rss_mb"] for k, v in memory.items()},
        "ort_vs_official_max_rel": parity,
        **({"other_vs_official_max_rel": parity_other} if parity_other else {}),
        "gflop_per_window": {k: round(v, 1) for k, v in gflop.items()},
        "fp32_matmul_peak_gflops": round(peak, 1),
        "achieved_gflops": {k: round(gflop["official" if k == "official" else "ours"] / v, 1)
                            for k, v in med.items()},
        "fp32_lower_bound_s": round(gflop["ours"] / peak, 3),
    }
    result.update(speedup_ratios(med, gflop["ours"] / peak))
    for kind in runners:
        runners[kind] = None
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="da3-small")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--sizes", nargs="*", default=["504x504", "280x504"], help="HxW list")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", nargs="*",
                        default=["onnxruntime", "onnxruntime_unfused", "official", "ours_torch"],
                        help="also: onnxruntime_int8_dynamic (the da3-export --precision int8_dynamic graph)")
    parser.add_argument("--workdir", default="", help="where checkpoints/ONNX go (default: a temp dir)")
    parser.add_argument("--output", default="", help="also write the JSON here")
    # child-process mode (internal)
    parser.add_argument("--child", default="")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--onnx", default="")
    parser.add_argument("--height", type=int, default=0)
    parser.add_argument("--width", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        configs = []
        for size in args.sizes:
            h, w = (int(v) for v in size.lower().split("x"))
            configs.append(bench_config(workdir, args.variant, args.views, h, w, args.reps, args.threads,
                                        args.runtimes))
    report = {
        "benchmark": "bench/bench_backends.py",
        "command": " ".join([Path(sys.executable).name, "bench/bench_backends.py"] + (argv or sys.argv[1:])),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": args.threads,
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "weights": "random (seed 0); official network saved in the released HF layout and exported with da3-export",
        "results": configs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
