"""Benchmark (issue 21 item 3b): candidate graph rewrites and ONNX Runtime session options on the split window graph.

Each variant is the window graph as the backend loads it (fused attention, ``session_options``), changed by one
candidate; all variants run alternately in one process on the same cached tokens (one warm-up run each, medians of
``--reps``), and each variant's outputs are compared with the unchanged graph's (max relative difference). A
rewrite goes into da3_ros/export only if it measurably helps; the candidates stay here as the measurement:

- ``layer_scale``: fold LayerScale ``Mul(Add(MatMul(x, W), b), gamma)`` into ``MatMul(x, W*gamma) + b*gamma``;
- ``skip_layernorm``: ``Add`` + ``LayerNormalization`` -> ``com.microsoft.SkipLayerNormalization`` (its 4th output
  is the sum the residual path reads on);
- ``kv_bnsh``: feed ``MultiHeadAttention`` key / value in (B, N, S, H) directly (no Transpose + Reshape);
- session options: ``nospin`` (``session.intra_op.allow_spinning=0``), ``denormal_zero``
  (``session.set_denormal_as_zero=1``), ``no_mem_pattern``, ``no_nchwc`` (NchwcTransformer disabled), ``extended``
  (ORT_ENABLE_EXTENDED instead of ALL), ``dynamic_block`` (``session.dynamic_block_base=4``), ``no_flash``
  (``ORT_DISABLE_FLASH_ATTENTION=1``: MultiHeadAttention's unfused path).

The window graph comes from bench/profile_window_graph.py's workdir (exported there if missing)::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_window_graph_variants.py --reps 5 \
        --variants base layer_scale skip_layernorm kv_bnsh nospin no_nchwc
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backends import official_model  # noqa: E402
from bench_split import cpu_model, loadavg, max_rel  # noqa: E402

SESSION_VARIANTS = ("nospin", "denormal_zero", "no_mem_pattern", "no_nchwc", "extended", "dynamic_block", "no_flash")
REWRITE_VARIANTS = ("layer_scale", "skip_layernorm", "kv_bnsh")


def _maps(graph):
    producer = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers, {t.name: t for t in graph.initializer}


def _constant(name, producer, initializers):
    """Value of a constant tensor (initializer, Constant, or an Identity chain of one), else None."""
    from onnx import numpy_helper

    from da3_ros.export.graph_edit import attribute

    while name not in initializers and name in producer and producer[name].op_type == "Identity":
        name = producer[name].input[0]
    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    node = producer.get(name)
    if node is not None and node.op_type == "Constant":
        return numpy_helper.to_array(attribute(node, "value"))
    return None


def _linear_before(mul, producer, consumers, initializers):
    """(MatMul, Add, weight name, bias index, gamma) when ``mul`` scales a single-use ``MatMul + bias``, else None."""
    for ai, gi in ((0, 1), (1, 0)):
        add, gamma = producer.get(mul.input[ai]), _constant(mul.input[gi], producer, initializers)
        if add is None or add.op_type != "Add" or gamma is None or gamma.ndim != 1:
            continue
        if len(consumers.get(add.output[0], [])) != 1:
            continue
        for mi, bi in ((0, 1), (1, 0)):
            matmul, bias = producer.get(add.input[mi]), _constant(add.input[bi], producer, initializers)
            if matmul is None or matmul.op_type != "MatMul" or bias is None or matmul.input[1] not in initializers:
                continue
            if len(consumers.get(matmul.output[0], [])) != 1 or len(consumers.get(matmul.input[1], [])) != 1:
                continue
            if bias.shape == gamma.shape and initializers[matmul.input[1]].dims[-1] == gamma.shape[0]:
                return matmul, add, bi, bias, gamma
    return None


def fold_layer_scale(model) -> int:
    """Fold every LayerScale multiply into the preceding MatMul weight and bias; return how many."""
    import numpy as np
    from onnx import numpy_helper

    from da3_ros.export.graph_edit import remove_dead_nodes

    graph = model.graph
    producer, consumers, initializers = _maps(graph)
    folded = 0
    for mul in [n for n in graph.node if n.op_type == "Mul"]:
        match = _linear_before(mul, producer, consumers, initializers)
        if match is None:
            continue
        matmul, add, bias_index, bias, gamma = match
        weight = initializers[matmul.input[1]]
        weight.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(weight) * gamma).astype(np.float32),
                                                weight.name))
        bias_name = f"{add.name}/layer_scale_folded_bias"
        graph.initializer.append(numpy_helper.from_array((bias * gamma).astype(np.float32), bias_name))
        add.input[bias_index] = bias_name
        for node in graph.node:
            for k, name in enumerate(node.input):
                if name == mul.output[0]:
                    node.input[k] = add.output[0]
        folded += 1
    remove_dead_nodes(graph)
    return folded


def skip_layer_norm(model) -> int:
    """``Add(a, b)`` (two activations) feeding a last-axis ``LayerNormalization`` -> ``SkipLayerNormalization``."""
    from onnx import helper

    from da3_ros.export.graph_edit import attribute

    graph = model.graph
    producer, _, initializers = _maps(graph)
    replace, removed = {}, set()
    for norm in graph.node:
        if norm.op_type != "LayerNormalization" or attribute(norm, "axis", -1) != -1 or len(norm.input) < 3:
            continue
        add = producer.get(norm.input[0])
        if add is None or add.op_type != "Add" or id(add) in replace:
            continue
        if any(i in initializers or producer.get(i) is None or producer[i].op_type == "Constant" for i in add.input):
            continue
        replace[id(add)] = helper.make_node(
            "SkipLayerNormalization", [add.input[0], add.input[1], norm.input[1], norm.input[2]],
            [norm.output[0], "", "", add.output[0]], domain="com.microsoft", name=f"{norm.name}/SkipLayerNorm",
            epsilon=float(attribute(norm, "epsilon", 1e-5)))
        removed.add(id(norm))
    rebuilt = [replace.get(id(n), n) for n in graph.node if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(rebuilt)
    return len(replace)


def kv_bnsh(model) -> int:
    """Feed each MultiHeadAttention's key and value in (B, N, S, H), dropping the Transpose + Reshape before them."""
    from da3_ros.export.graph_edit import remove_dead_nodes

    graph = model.graph
    producer, _, _ = _maps(graph)
    count = 0
    for node in graph.node:
        if node.op_type != "MultiHeadAttention":
            continue
        for index in (1, 2):
            reshape = producer[node.input[index]]
            node.input[index] = producer[reshape.input[0]].input[0]
        count += 1
    remove_dead_nodes(graph)
    return count


def session_for(proto, variant: str, threads: int, workdir: Path):
    """(session of ``proto`` changed by ``variant``, what the rewrite did)."""
    import onnx
    import onnxruntime as ort

    from da3_ros.backends.onnxruntime_backend import session_options

    model = copy.deepcopy(proto)
    rewrites = {"layer_scale": fold_layer_scale, "skip_layernorm": skip_layer_norm, "kv_bnsh": kv_bnsh}
    info = {"rewritten": rewrites[variant](model)} if variant in rewrites else {}
    options = session_options(threads)
    entries = {"nospin": ("session.intra_op.allow_spinning", "0"),
               "denormal_zero": ("session.set_denormal_as_zero", "1"),
               "no_nchwc": ("optimization.disable_specified_optimizers", "NchwcTransformer"),
               "dynamic_block": ("session.dynamic_block_base", "4")}
    if variant in entries:
        options.add_session_config_entry(*entries[variant])
    if variant == "no_mem_pattern":
        options.enable_mem_pattern = False
    if variant == "extended":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if variant == "no_flash":
        os.environ["ORT_DISABLE_FLASH_ATTENTION"] = "1"   # read when the MultiHeadAttention kernel is built
    handle, path = tempfile.mkstemp(prefix=f"variant_{variant}_", suffix=".onnx", dir=str(workdir))
    os.close(handle)
    try:
        onnx.save_model(model, path)
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"]), info
    finally:
        os.environ.pop("ORT_DISABLE_FLASH_ATTENTION", None)
        os.unlink(path)


def window_feeds(split_path: Path, views: int, height: int, width: int, threads: int) -> dict:
    """The window graph's inputs: the encoder's tokens of ``views`` random views."""
    import numpy as np
    import onnx

    from da3_ros.artifact.tensors import SELECTION_TOKEN, VIEW_TOKENS
    from da3_ros.backends.onnxruntime_backend import create_session

    encoder, _ = create_session(str(split_path.with_suffix(".encoder.onnx")), num_threads=threads,
                                fused_attention=True)
    images = np.random.default_rng(1).integers(0, 256, size=(1, views, height, width, 3), dtype=np.uint8)
    names = [o.name for o in encoder.get_outputs()]
    encoded = [encoder.run(None, {"images": images[:, v:v + 1]}) for v in range(views)]
    feeds = {VIEW_TOKENS: np.concatenate([e[names.index(VIEW_TOKENS)] for e in encoded], axis=1)}
    if SELECTION_TOKEN in [i.name for i in onnx.load(str(split_path), load_external_data=False).graph.input]:
        feeds[SELECTION_TOKEN] = np.concatenate([e[names.index(SELECTION_TOKEN)] for e in encoded], axis=1)
    return feeds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", default="280x504", help="HxW")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/profile_window_graph")
    parser.add_argument("--variants", nargs="+", default=["base", *REWRITE_VARIANTS, *SESSION_VARIANTS],
                        choices=["base", *REWRITE_VARIANTS, *SESSION_VARIANTS])
    args = parser.parse_args(argv)
    import onnx
    import onnxruntime

    from da3_ros.export.attention_fusion import fuse_attention
    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.model import load_model, save_checkpoint

    height, width = (int(v) for v in args.size.split("x"))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    split_path = workdir / f"small_n{args.views}_{height}x{width}_split.onnx"
    if not split_path.exists():
        checkpoint = workdir / "da3-small"
        if not (checkpoint / "model.safetensors").exists():
            save_checkpoint(official_model("da3-small"), checkpoint, "da3-small")
        export_model_to_onnx(load_model(str(checkpoint), device="cpu").float().eval(), split_path, views=args.views,
                             height=height, width=width, verbose=False, split=True)
    feeds = window_feeds(split_path, args.views, height, width, args.threads)
    proto = onnx.load(str(split_path))
    fuse_attention(proto)
    variants = list(dict.fromkeys(["base", *args.variants]))
    sessions = {v: session_for(proto, v, args.threads, workdir) for v in variants}
    del proto
    load_before = loadavg()
    times = {v: [] for v in variants}
    last = {}
    for rep in range(args.reps + 1):   # rep 0 is the warm-up
        for v in variants:
            t0 = time.perf_counter()
            last[v] = sessions[v][0].run(None, feeds)
            if rep:
                times[v].append(time.perf_counter() - t0)
    names = [o.name for o in sessions["base"][0].get_outputs()]
    ref = dict(zip(names, last["base"]))
    base_s = statistics.median(times["base"])
    results = {}
    for v in variants:
        rel = max_rel(dict(zip(names, last[v])), ref)
        results[v] = {"median_s": round(statistics.median(times[v]), 4), "min_s": round(min(times[v]), 4),
                      "raw_s": [round(t, 3) for t in times[v]],
                      "vs_base": round(statistics.median(times[v]) / base_s, 3), **sessions[v][1],
                      "max_rel_vs_base": {k: float(f"{x:.2e}") for k, x in rel.items()}}
    print(json.dumps({"cpu": cpu_model(), "threads": args.threads, "views": args.views, "size": args.size,
                      "onnxruntime": onnxruntime.__version__, "loadavg_before": load_before,
                      "loadavg_after": loadavg(), "reps": args.reps, "variants": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
