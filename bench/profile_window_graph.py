"""Profile (issue 21 item 3): where ONNX Runtime spends the window graph's time, per op type and graph region.

DA3-Small with random weights (the official network, seed 0, saved and loaded as bench/bench_split.py does),
exported monolithic and ``--split`` for one window (default N=4 280x504, fp32), run with ONNX Runtime's
built-in profiler (``SessionOptions.enable_profiling``) on the sessions the backend builds (fused attention,
``session_options``), ``--threads`` intra-op threads. One warm-up run, then ``--reps`` profiled runs; kernel
times are averaged over those runs (the warm-up run's kernels are dropped by their timestamps).

Printed as one JSON object per graph (``window`` = split window graph, ``encoder`` = split per-view encoder,
``monolithic``):

- ``per_op``: kernel ms per run and % of the summed kernel time, per executed op type (after ORT's fusions);
- ``per_region``: the same per region: attention (MultiHeadAttention, qkv / proj, softmax, q/k norm, RoPE),
  mlp (fc1, GELU, fc2), layernorm, dpt_head_conv, resize, layout (transposes, reshapes, concat, slices ...),
  camera_decoder, other;
- ``gemm``: MatMul / FusedMatMul / Gemm / MatMulInteger GFLOP per run, their time and achieved GFLOP/s, next to
  this machine's fp32 matmul peak (bench_backends.matmul_peak_gflops, best of before / after);
- ``fusions``: node counts of the optimized model ORT writes (``optimized_model_filepath``): LayerNormalization,
  SkipLayerNormalization, Gelu / FastGelu / BiasGelu, FusedMatMul, MultiHeadAttention, FusedConv, NCHWc
  reorders, and Transpose before (the loaded graph after our attention rewrite) / after.

    PYTHONPATH=$PWD .venv/bin/python bench/profile_window_graph.py --views 4 --size 280x504 --threads 2 --reps 3
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backends import matmul_peak_gflops, official_model  # noqa: E402
from bench_split import cpu_model  # noqa: E402

GEMM_OPS = ("MatMul", "FusedMatMul", "Gemm", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
LAYERNORM_OPS = ("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
                 "SkipSimplifiedLayerNormalization")
LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Concat", "Slice", "Split", "Gather", "Identity",
              "Expand", "Tile", "Flatten", "ReorderInput", "ReorderOutput", "Shape", "Cast")
FUSION_OPS = ("LayerNormalization", "SkipLayerNormalization", "Gelu", "FastGelu", "BiasGelu", "FusedMatMul",
              "MultiHeadAttention", "Attention", "FusedConv", "FusedGemm", "ReorderInput", "ReorderOutput",
              "Conv", "Transpose", "Erf", "Softmax", "Resize")


def region(name: str, op: str) -> str:
    """The graph region of the kernel ``name`` (the node name ORT ran) of op type ``op``."""
    if op in LAYERNORM_OPS and "/q_norm" not in name and "/k_norm" not in name:
        return "layernorm"
    if op == "Resize":
        return "resize"
    if "/cam_dec/" in name:
        return "camera_decoder"
    if "/da3_fused_attention_" in name or "/attn/" in name or op in ("MultiHeadAttention", "Attention", "Softmax"):
        return "layout" if op in ("Transpose", "Reshape") else "attention"
    if "/mlp/" in name:
        return "mlp"
    if op in ("Conv", "FusedConv", "ConvTranspose") and "/head/" in name:
        return "dpt_head_conv"
    if op in LAYOUT_OPS:
        return "layout"
    if "/head/" in name:
        return "dpt_head_other"
    return "other"


def _k_dim(a, b):
    """Contracted size of a (batched) matmul ``a`` @ ``b``. ORT lists only the activation (and a Gemm's bias) when
    the weight is a prepacked initializer: then ``a``'s last axis; a FusedMatMul with transA: ``a[-2]``."""
    if len(b) < 2 or a[-1] in (b[-2], b[-1]):
        return a[-1]
    return a[-2]


def kernel_flops(op: str, inputs, outputs) -> float:
    """FLOPs of one kernel from the profiler's input / output shapes (0 where not a GEMM-like op)."""
    import math

    if not inputs or not outputs:
        return 0.0
    out = outputs[0]
    if op in GEMM_OPS and len(inputs) >= 2:
        return 2.0 * math.prod(out) * _k_dim(inputs[0], inputs[1])
    if op in ("Conv", "FusedConv") and len(inputs) >= 2:
        return 2.0 * math.prod(out) * math.prod(inputs[1][1:])
    if op == "MultiHeadAttention" and len(inputs) >= 3:  # (B, S, D) q, k, v: QK^T and PV
        b, s, d = inputs[0]
        return 4.0 * b * s * inputs[1][1] * d
    return 0.0


def _shapes(entries):
    return [list(next(iter(e.values()))) for e in entries or []]


def aggregate(profile_path: str, skip_runs: int = 1, top: int = 40) -> dict:
    """Per-op / per-region kernel ms per run and GEMM FLOPs from an ORT profile JSON (warm-up runs dropped)."""
    events = json.loads(Path(profile_path).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    kept = runs[skip_runs:]
    per_op = collections.defaultdict(float)
    per_node = collections.defaultdict(float)
    per_region = collections.defaultdict(float)
    flops = collections.defaultdict(float)
    gemm_us = 0.0
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if not any(lo <= e["ts"] <= hi for lo, hi in kept):
            continue
        op = e["args"].get("op_name", "?")
        name = e["name"][:-len("_kernel_time")]
        per_op[op] += e["dur"]
        per_node[f"{op} {name}"] += e["dur"]
        per_region[region(name, op)] += e["dur"]
        f = kernel_flops(op, _shapes(e["args"].get("input_type_shape")), _shapes(e["args"].get("output_type_shape")))
        flops[op] += f
        if op in GEMM_OPS:
            gemm_us += e["dur"]
    n = max(len(kept), 1)
    total = sum(per_op.values())
    run_ms = statistics.median([(hi - lo) / 1e3 for lo, hi in kept]) if kept else 0.0

    def table(d):
        return {k: {"ms": round(v / n / 1e3, 1), "pct": round(100 * v / total, 1)}
                for k, v in sorted(d.items(), key=lambda kv: -kv[1])}

    gemm_gflop = sum(flops[op] for op in GEMM_OPS) / n / 1e9
    return {
        "runs": len(kept), "model_run_ms_median": round(run_ms, 1), "kernel_ms_per_run": round(total / n / 1e3, 1),
        "per_op": table(per_op), "per_region": table(per_region),
        "gemm": {"gflop": round(gemm_gflop, 1), "ms": round(gemm_us / n / 1e3, 1),
                 "gflops": round(gemm_gflop / (gemm_us / n / 1e6), 1) if gemm_us else 0.0},
        "top_kernels_ms": {k: round(v / n / 1e3, 2)
                           for k, v in sorted(per_node.items(), key=lambda kv: -kv[1])[:top]},
        "flops_by_op_gflop": {k: round(v / n / 1e9, 2) for k, v in flops.items() if v},
        "achieved_gflops_by_op": {k: round(flops[k] / per_op[k] * 1e6 / 1e9, 1) for k in flops if flops[k]},
    }


def node_counts(proto) -> dict:
    counts = collections.Counter(n.op_type for n in proto.graph.node)
    return {k: counts.get(k, 0) for k in FUSION_OPS}


def profile_graph(path: Path, feeds, *, threads: int, reps: int, workdir: Path, tag: str) -> dict:
    """Profile one graph as the backend loads it (fused attention, the backend's session options)."""
    import onnx
    import onnxruntime as ort

    from da3_ros.backends.onnxruntime_backend import session_options
    from da3_ros.export.attention_fusion import fuse_attention

    proto = onnx.load(str(path))
    report = fuse_attention(proto)
    before = node_counts(proto)
    handle, tmp = tempfile.mkstemp(prefix=f"profile_{tag}_", suffix=".onnx", dir=str(workdir))
    os.close(handle)
    onnx.save_model(proto, tmp)
    del proto
    optimized = workdir / f"{tag}.optimized.onnx"
    options = session_options(threads)
    options.optimized_model_filepath = str(optimized)
    sess = ort.InferenceSession(tmp, sess_options=options, providers=["CPUExecutionProvider"])
    after = node_counts(onnx.load(str(optimized), load_external_data=False))
    del sess
    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / f"ort_profile_{tag}")
    sess = ort.InferenceSession(tmp, sess_options=options, providers=["CPUExecutionProvider"])
    os.unlink(tmp)
    for _ in range(reps + 1):
        sess.run(None, feeds)
    profile = sess.end_profiling()
    result = aggregate(profile)
    result["fusions"] = {"attention_rewrite": report.describe(), "before_ort": before, "after_ort": after}
    result["profile_file"] = profile
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", default="280x504", help="HxW")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/profile_window_graph")
    parser.add_argument("--graphs", nargs="+", default=["window", "encoder", "monolithic"])
    args = parser.parse_args(argv)
    import numpy as np
    import onnxruntime
    import torch

    from da3_ros.artifact.tensors import SELECTION_TOKEN, VIEW_TOKENS
    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.model import load_model, save_checkpoint

    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split("x"))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "da3-small"
    if not (checkpoint / "model.safetensors").exists():
        save_checkpoint(official_model("da3-small"), checkpoint, "da3-small")
    peak_before = matmul_peak_gflops(args.threads)
    model = load_model(str(checkpoint), device="cpu").float().eval()
    paths = {}
    for kind, split in (("monolithic", False), ("split", True)):
        paths[kind] = workdir / f"small_n{args.views}_{height}x{width}_{kind}.onnx"
        export_model_to_onnx(model, paths[kind], views=args.views, height=height, width=width, verbose=False,
                             split=split)
    del model
    images = np.random.default_rng(1).integers(0, 256, size=(1, args.views, height, width, 3), dtype=np.uint8)
    encoder_path = paths["split"].with_suffix(".encoder.onnx")
    from da3_ros.backends.onnxruntime_backend import create_session

    encoder, _ = create_session(str(encoder_path), num_threads=args.threads, fused_attention=True)
    encoded = [encoder.run(None, {"images": images[:, v:v + 1]}) for v in range(args.views)]
    names = [o.name for o in encoder.get_outputs()]
    del encoder
    tokens = np.concatenate([e[names.index(VIEW_TOKENS)] for e in encoded], axis=1)
    selection = np.concatenate([e[names.index(SELECTION_TOKEN)] for e in encoded], axis=1)
    import onnx

    window_inputs = [i.name for i in onnx.load(str(paths["split"]), load_external_data=False).graph.input]
    window_feeds = {VIEW_TOKENS: tokens}
    if SELECTION_TOKEN in window_inputs:
        window_feeds[SELECTION_TOKEN] = selection
    plan = {"window": (paths["split"], window_feeds), "encoder": (encoder_path, {"images": images[:, :1]}),
            "monolithic": (paths["monolithic"], {"images": images})}
    results = {}
    for tag in args.graphs:
        path, feeds = plan[tag]
        results[tag] = profile_graph(path, feeds, threads=args.threads, reps=args.reps, workdir=workdir, tag=tag)
    peak = max(peak_before, matmul_peak_gflops(args.threads))
    for r in results.values():
        r["gemm"]["pct_of_fp32_matmul_peak"] = round(100 * r["gemm"]["gflops"] / peak, 1)
    print(json.dumps({
        "cpu": cpu_model(), "threads": args.threads, "views": args.views, "size": args.size,
        "variant": "da3-small (random weights)", "fp32_matmul_peak_gflops": round(peak, 1),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3], "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "graphs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
