"""Export a DA3 model to ONNX for one fixed window (N views of H x W) with its sidecar.

Graph contract (INTERFACES.md): input ``images`` uint8 ``(1, N, H, W, 3)`` RGB (+ ``pose_encoding``
float32 ``(1, N, 9)`` for pose-conditioned graphs); outputs ``depth``, ``depth_conf``,
``extrinsics``, ``intrinsics`` (multi-view variants), ``ray``/``ray_conf`` (``with_rays``), ``sky``
(metric/mono/nested variants), ``metric_depth`` (nested only) -- each float32 with batch axis 1.

Export hazards handled here (DA3_MODEL_SPEC.md section 9):
- the uint8 input is Cast to float32 *before* the NHWC->NCHW Transpose (TensorRT rejects a
  Transpose on UInt8), then ImageNet-normalised inside the graph;
- size-dependent tables (pos-embed, RoPE) are precomputed for (H, W) before tracing;
- the legacy TorchScript exporter (``dynamo=False``, opset 18) is used: measured faster in ORT;
- the finished graph is checked to contain no op with a data-dependent output shape
  (:data:`DATA_DEPENDENT_SHAPE_OPS`) and fully static output shapes;
- weights go to external data (``FILE.onnx.data``) when the model exceeds 2 GB.
"""
from __future__ import annotations

import datetime as _dt
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from da3_ros.export.fp16_conversion import FP16_PRECISION
from da3_ros.export.int8_quantization import INT8_PRECISION
from da3_ros.export.sidecar import (
    EXPORTER_VERSION,
    Sidecar,
    TensorSpec,
    checkpoint_sha256,
    parse_ref_view,
    write_sidecar,
)

DEFAULT_OPSET = 18
#: Precisions of the exported ONNX graph: fp32 (every backend), fp16 (mixed, for strongly typed
#: TensorRT(-RTX) fp16 engines) or int8_dynamic (ONNX Runtime only).
ONNX_PRECISIONS = ("fp32", FP16_PRECISION, INT8_PRECISION)
#: ONNX ops whose output shape depends on input *values* (forbidden: TensorRT needs static shapes).
DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "Unique", "Compress", "NonMaxSuppression", "Loop", "Scan",
                                      "If", "SequenceConstruct", "SplitToSequence", "StringSplit"})
#: Output order of every exported graph (subset present depends on the variant/options).
GRAPH_OUTPUT_ORDER = ("depth", "depth_conf", "extrinsics", "intrinsics", "ray", "ray_conf", "sky",
                      "metric_depth")
_PROTOBUF_LIMIT = 2 * 1024 ** 3 - 64 * 1024 ** 2  # 2 GB minus headroom for the graph itself


def _progress(msg: str, t0: float) -> None:
    print(f"[da3-export onnx] {time.perf_counter() - t0:7.1f}s {msg}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB): VmHWM where /proc exists (ru_maxrss of a
    fork+exec child starts at its parent's peak), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_export_wrapper(model, *, ref_view: Union[str, int] = "saddle_balanced", pose_conditioned: bool = False,
                        with_rays: bool = False):
    """nn.Module: ``(images uint8 (1,N,H,W,3)[, pose_encoding (1,N,9)]) -> tuple of outputs``.

    The output names are set on the returned module as ``output_names`` after
    :func:`probe_outputs` ran it once.
    """
    import torch
    from torch import nn

    from da3_ros.model.normalization import IMAGENET_MEAN, IMAGENET_STD

    class DA3ExportWrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 1, 3, 1, 1),
                                 persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 1, 3, 1, 1),
                                 persistent=False)
            self.output_names: List[str] = []

        def normalise(self, images: torch.Tensor) -> torch.Tensor:
            x = images.to(torch.float32)  # Cast first: TensorRT cannot transpose UInt8
            x = x.permute(0, 1, 4, 2, 3) / 255.0
            return (x - self.mean) / self.std

        def outputs_dict(self, images: torch.Tensor, pose_encoding: Optional[torch.Tensor] = None):
            kwargs = {"ref_view": ref_view}
            if pose_conditioned:
                kwargs["pose_encoding"] = pose_encoding
            if with_rays:
                kwargs["return_rays"] = True
            x = self.normalise(images)
            n = int(images.shape[1])
            perm = None
            fixed = _fixed_reference_index(ref_view, n, pose_conditioned)
            if fixed is not None and fixed != 0:
                # A fixed reference index (or "middle") is traced as a tensor expression of N by the
                # model's selection code and breaks tracing; the backbone is view-permutation
                # equivariant except for the reference token (DA3_MODEL_SPEC 2.5 / 10.4), so move the
                # reference view first with a constant permutation, run "first", and permute back.
                perm = [fixed] + [i for i in range(n) if i != fixed]
                x = x[:, perm]
                kwargs["ref_view"] = "first"
            elif fixed == 0:
                kwargs["ref_view"] = "first"
            out = self.model(x, **kwargs)
            out = {k: out[k] for k in GRAPH_OUTPUT_ORDER if out.get(k) is not None}
            if perm is not None:
                inverse = [perm.index(i) for i in range(n)]
                out = {k: v[:, inverse] for k, v in out.items()}
            return out

        def forward(self, images: torch.Tensor, pose_encoding: Optional[torch.Tensor] = None):
            out = self.outputs_dict(images, pose_encoding)
            return tuple(out[k].float() for k in self.output_names)

    return DA3ExportWrapper().eval()


def _fixed_reference_index(ref_view: Union[str, int], views: int, pose_conditioned: bool) -> Optional[int]:
    """The reference view when it does not depend on the images, else None (selected in-graph)."""
    if pose_conditioned:
        return None  # the camera encoder replaces the reference token; ref_view is unused
    if isinstance(ref_view, int):
        if not -views <= ref_view < views:
            raise ValueError(f"ref_view index {ref_view} out of range for {views} views")
        return ref_view % views
    if ref_view == "first":
        return 0
    if ref_view == "middle":
        return views // 2 if views >= 3 else 0
    return None if views >= 3 else 0


def example_inputs(views: int, height: int, width: int, *, pose_conditioned: bool, seed: int = 0):
    """Deterministic example inputs for tracing / checks: uint8 images (+ a plausible pose encoding)."""
    import torch

    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, size=(1, views, height, width, 3), dtype=np.uint8))
    if not pose_conditioned:
        return (images,)
    return (images, torch.from_numpy(example_pose_encoding(views, rng)[None]))


def example_pose_encoding(views: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 9) float32: small camera-to-world translations, unit quaternions (xyzw, w >= 0), fov ~1 rad."""
    t = rng.normal(scale=0.3, size=(views, 3))
    q = rng.normal(size=(views, 4)) * np.array([0.1, 0.1, 0.1, 1.0])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, 3:4]) + (q[:, 3:4] == 0)
    fov = rng.uniform(0.8, 1.2, size=(views, 2))
    pe = np.concatenate([t, q, fov], axis=1).astype(np.float32)
    pe[0, :7] = [0, 0, 0, 0, 0, 0, 1]
    return pe


def probe_outputs(wrapper, inputs) -> Dict[str, Tuple[int, ...]]:
    """Run the wrapper eagerly once; set ``wrapper.output_names``; return name -> shape."""
    import torch

    with torch.inference_mode():
        out = wrapper.outputs_dict(*inputs)
    wrapper.output_names = list(out)
    return {k: tuple(v.shape) for k, v in out.items()}


#: For ops whose output *shape* is set by some input *values*: op type -> indices of those inputs.
SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2), "ConstantOfShape": (0,),
                "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Upsample": (1,), "Pad": (1,), "TopK": (1,),
                "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "ReduceSum": (1,),
                "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "CenterCropPad": (1,)}


def value_dependent_shape_nodes(model_proto) -> List[str]:
    """Nodes whose output shape depends on the *values* of a graph input (not only its shape).

    Walks back from every shape-setting input (:data:`SHAPE_INPUTS`) to its sources: initializers,
    ``Constant`` nodes and ``Shape``/``Size`` of anything are static (input shapes are fixed);
    reaching a graph input any other way makes the shape data-dependent.
    """
    graph = model_proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    graph_inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
    memo: Dict[str, bool] = {}

    def depends_on_values(name: str) -> bool:
        stack, order = [name], []
        while stack:  # iterative DFS (graphs are deep), then resolve in reverse post-order
            cur = stack.pop()
            if cur in memo or cur == "":
                continue
            node = producer.get(cur)
            if node is None or node.op_type in ("Shape", "Size", "Constant"):
                memo[cur] = cur in graph_inputs
                continue
            pending = [i for i in node.input if i and i not in memo]
            if pending:
                stack.append(cur)
                stack.extend(pending)
                order.append(cur)
                if len(order) > 10 * len(producer) + 100:
                    raise RuntimeError("graph walk did not terminate (cycle?)")
                continue
            memo[cur] = any(memo.get(i, False) for i in node.input if i)
        return memo[name]

    bad = []
    for node in graph.node:
        for idx in SHAPE_INPUTS.get(node.op_type, ()):
            if idx < len(node.input) and node.input[idx] and depends_on_values(node.input[idx]):
                bad.append(f"{node.op_type} {node.name}")
                break
    return bad


def graph_problems(model_proto) -> List[str]:
    """Reasons why a graph is not static: ops with data-dependent output shapes, shape-setting
    inputs computed from input values, or non-static input/output dims. Empty list = static."""
    problems = []
    ops = {n.op_type for n in model_proto.graph.node}
    bad = sorted(ops & DATA_DEPENDENT_SHAPE_OPS)
    if bad:
        problems.append(f"data-dependent-shape ops {bad}")
    value_dependent = value_dependent_shape_nodes(model_proto)
    if value_dependent:
        problems.append(f"shapes computed from input values at {value_dependent[:5]}")
    for vi in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            problems.append(f"tensor {vi.name} has a non-static shape")
    return problems


def op_histogram(model_proto) -> Dict[str, int]:
    hist: Dict[str, int] = {}
    for n in model_proto.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))


def check_export_options(opset: int, precision: str) -> None:
    if opset < 18:
        raise ValueError(f"opset must be >= 18, got {opset}")
    if precision not in ONNX_PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {ONNX_PRECISIONS}, got {precision!r}")


def export_model_to_onnx(
    model,
    output: Union[str, os.PathLike],
    *,
    views: int,
    height: int,
    width: int,
    variant: Optional[str] = None,
    ref_view: Union[str, int] = "saddle_balanced",
    pose_conditioned: bool = False,
    with_rays: bool = False,
    opset: int = DEFAULT_OPSET,
    checkpoint: str = "",
    checkpoint_digest: str = "",
    depth_unit: Optional[str] = None,
    verbose: bool = True,
    external_data_above_bytes: int = _PROTOBUF_LIMIT,
    precision: str = "fp32",
) -> Sidecar:
    """Export an already-built fp32 DA3 model (eval mode, CPU) to ``output`` + ``output``.json.

    Weights go to ``output.data`` (ONNX external data) when they exceed
    ``external_data_above_bytes`` (default: just under the 2 GB protobuf limit).
    ``precision="fp16"`` writes a mixed-precision graph for strongly typed fp16 TensorRT(-RTX) engines
    (da3_ros.export.fp16_conversion); ``precision="int8_dynamic"`` quantises the backbone block weights
    for ONNX Runtime on CPUs (da3_ros.export.int8_quantization)."""
    import onnx
    import torch

    check_export_options(opset, precision)
    t0 = time.perf_counter()
    say = (lambda m: _progress(m, t0)) if verbose else (lambda m: None)
    ref_view = parse_ref_view(ref_view)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    variant = variant or getattr(model, "variant", "") or "custom"
    model = model.float().eval()
    if hasattr(model, "set_precision"):
        model.set_precision("fp32")
    if hasattr(model, "prepare"):
        model.prepare(height, width)
    wrapper = make_export_wrapper(model, ref_view=ref_view, pose_conditioned=pose_conditioned,
                                  with_rays=with_rays)
    inputs = example_inputs(views, height, width, pose_conditioned=pose_conditioned)
    say(f"probing outputs of {variant} for N={views}, {height}x{width}")
    shapes = probe_outputs(wrapper, inputs)
    input_specs = [TensorSpec("images", "uint8", [1, views, height, width, 3])]
    if pose_conditioned:
        input_specs.append(TensorSpec("pose_encoding", "float32", [1, views, 9]))
    output_specs = [TensorSpec(k, "float32", list(s)) for k, s in shapes.items()]
    n_params = sum(p.numel() for p in model.parameters())
    large = n_params * 4 > external_data_above_bytes
    tmp_dir = output.parent / f".{output.name}.export"
    tmp_dir.mkdir(exist_ok=True)
    tmp_path = tmp_dir / output.name
    say(f"tracing + exporting (legacy exporter, opset {opset}, {n_params / 1e6:.1f} M parameters)")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, inputs, str(tmp_path), dynamo=False, opset_version=opset,
                          input_names=[s.name for s in input_specs], output_names=[s.name for s in output_specs],
                          do_constant_folding=True)
    say("checking graph")
    proto = onnx.load(str(tmp_path), load_external_data=True)
    problems = graph_problems(proto)
    if problems:
        raise RuntimeError(f"exported graph is not static ({'; '.join(problems)}); not usable by TensorRT")
    quantization = {}
    if precision == INT8_PRECISION:
        from da3_ros.export.int8_quantization import quantize_int8_dynamic

        say("quantising the backbone block weights to int8 (dynamic, per channel)")
        del proto
        quantized_path = tmp_dir / f"int8_{output.name}"
        quantization = quantize_int8_dynamic(tmp_path, quantized_path, external_data=large)
        proto = onnx.load(str(quantized_path), load_external_data=True)
    elif precision == FP16_PRECISION:
        from da3_ros.export.fp16_conversion import convert_to_fp16

        say("converting to mixed fp16 (LayerNorm, softmax, exp, reductions stay fp32)")
        proto = convert_to_fp16(proto)
        problems = graph_problems(proto)
        if problems:
            raise RuntimeError(f"fp16 graph is not static ({'; '.join(problems)})")
    sidecar = Sidecar(
        variant=variant, views=views, height=height, width=width, ref_view=str(ref_view),
        inputs=input_specs, outputs=output_specs, precision=precision,
        checkpoint_sha256=checkpoint_digest or (checkpoint_sha256(checkpoint) if checkpoint else ""),
        exporter_version=EXPORTER_VERSION, artifact="onnx", pose_conditioned=pose_conditioned,
        with_rays=with_rays, opset=opset,
        depth_unit=depth_unit or ("canonical_metric" if "metric" in variant else "window_scale"),
        checkpoint=str(checkpoint),
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        extra={"torch_version": torch.__version__, "onnx_version": onnx.__version__,
               "parameters": int(n_params), "nodes": len(proto.graph.node),
               "op_histogram": op_histogram(proto), **quantization},
    )
    del proto.metadata_props[:]
    for key, value in sidecar.to_metadata_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    say(f"writing {output}" + (" (+ external data)" if large else ""))
    for stale in (output, Path(str(output) + ".data")):
        if stale.exists():
            stale.unlink()
    if large:
        onnx.save_model(proto, str(output), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=output.name + ".data", size_threshold=1024)
        sidecar.extra["external_data"] = output.name + ".data"
    else:
        onnx.save_model(proto, str(output))
    for f in tmp_dir.iterdir():
        f.unlink()
    tmp_dir.rmdir()
    sidecar.extra["export_s"] = round(time.perf_counter() - t0, 2)
    sidecar.extra["export_peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_sidecar(sidecar, output)
    say(f"done: {output} ({output.stat().st_size / 1e6:.1f} MB) and {output.with_suffix('.json')}")
    return sidecar


def load_checkpoint_model(checkpoint: str, variant: Optional[str] = None):
    """Load a checkpoint (HF dir, .safetensors/.pth file, or repo id) strictly, fp32, CPU, eval."""
    from da3_ros.model import load_model

    return load_model(checkpoint, variant=variant, device="cpu").float().eval()


def export_onnx(checkpoint: str, output: Union[str, os.PathLike], *, variant: Optional[str] = None,
                verbose: bool = True, **options) -> Sidecar:
    """Checkpoint -> ONNX + sidecar (``da3-export onnx``). ``options`` are those of
    :func:`export_model_to_onnx` (views, height, width, ref_view, pose_conditioned, with_rays, opset,
    precision); they are checked before the checkpoint is loaded."""
    check_export_options(options.get("opset", DEFAULT_OPSET), options.get("precision", "fp32"))
    t0 = time.perf_counter()
    if verbose:
        _progress(f"loading {checkpoint}", t0)
    from da3_ros.model.checkpoint import resolve_checkpoint

    weights, _ = resolve_checkpoint(checkpoint, variant)
    digest = checkpoint_sha256(weights)
    model = load_checkpoint_model(checkpoint, variant)
    return export_model_to_onnx(model, output, variant=variant or getattr(model, "variant", None),
                                checkpoint=str(checkpoint), checkpoint_digest=digest, verbose=verbose, **options)
