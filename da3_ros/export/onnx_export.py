"""Export a DA3 model to ONNX for one fixed window (N views of H x W) with its sidecar.

Graph contract (INTERFACES.md): input ``images`` uint8 ``(1, N, H, W, 3)`` RGB (+ ``pose_encoding``
float32 ``(1, N, 9)`` for pose-conditioned graphs); outputs ``depth``, ``depth_conf``,
``extrinsics``, ``intrinsics`` (multi-view variants), ``ray``/``ray_conf`` (``with_rays``), ``sky``
(metric/mono/nested variants), ``metric_depth`` (nested only), ``descriptor`` ``(1, N, D)`` (``with_descriptor``:
each view's place-recognition descriptor) -- each float32 with batch axis 1.

The export steps (:func:`export_model_to_onnx`; :func:`export_onnx` from a checkpoint) and the
hazards they handle (DA3_MODEL_SPEC.md section 9):
- the traced module (cast before transpose, in-graph normalisation, fixed reference views) is
  da3_ros.export.export_wrapper;
- size-dependent tables (pos-embed, RoPE) are precomputed for (H, W) before tracing;
- the legacy TorchScript exporter (``dynamo=False``, opset 18) is used: measured faster in ORT;
- the finished graph must pass da3_ros.export.graph_checks (no op with a data-dependent output
  shape, fully static shapes);
- ``fp16`` / ``int8_dynamic`` precisions rewrite the checked fp32 graph (fp16_conversion,
  int8_quantization);
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
from typing import Optional, Union

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.ref_view import parse_ref_view
from da3_ros.artifact.sidecar import EXPORTER_VERSION, Sidecar, TensorSpec, checkpoint_sha256, write_sidecar
from da3_ros.artifact.tensors import IMAGES_INPUT, POSE_ENCODING_DIM, POSE_ENCODING_INPUT
from da3_ros.export.export_wrapper import example_inputs, make_export_wrapper, probe_outputs
from da3_ros.export.fp16_conversion import FP16_PRECISION
from da3_ros.export.graph_checks import graph_problems, op_histogram
from da3_ros.export.int8_quantization import INT8_PRECISION

DEFAULT_OPSET = 18
#: Precisions of the exported ONNX graph: fp32 (every backend), fp16 (mixed, for strongly typed
#: TensorRT(-RTX) fp16 engines) or int8_dynamic (ONNX Runtime only).
ONNX_PRECISIONS = ("fp32", FP16_PRECISION, INT8_PRECISION)
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
    with_descriptor: bool = False,
    opset: int = DEFAULT_OPSET,
    checkpoint: str = "",
    checkpoint_digest: str = "",
    verbose: bool = True,
    external_data_above_bytes: int = _PROTOBUF_LIMIT,
    precision: str = "fp32",
    split: bool = False,
) -> Sidecar:
    """Export an already-built fp32 DA3 model (eval mode, CPU) to ``output`` + ``output``.json.

    Weights go to ``output.data`` (ONNX external data) when they exceed
    ``external_data_above_bytes`` (default: just under the 2 GB protobuf limit).
    ``precision="fp16"`` writes a mixed-precision graph for strongly typed fp16 TensorRT(-RTX) engines
    (da3_ros.export.fp16_conversion); ``precision="int8_dynamic"`` quantises the backbone block weights
    for ONNX Runtime on CPUs (da3_ros.export.int8_quantization). The sidecar's ``capabilities`` and
    ``depth_unit`` come from the model's configuration (``ModelCapabilities.from_config``).
    ``split=True`` writes a split artefact instead: ``output`` is the window graph, ``output.encoder.onnx`` the
    per-view encoder (da3_ros.export.split_export)."""
    import onnx
    import torch

    check_export_options(opset, precision)
    t0 = time.perf_counter()
    say = (lambda m: _progress(m, t0)) if verbose else (lambda m: None)
    ref_view = parse_ref_view(ref_view)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    variant = variant or getattr(model, "variant", "") or "custom"
    capabilities = ModelCapabilities.from_config(model.config)
    model = model.float().eval()
    if hasattr(model, "set_precision"):
        model.set_precision("fp32")
    if hasattr(model, "prepare"):
        model.prepare(height, width)
    n_params = sum(p.numel() for p in model.parameters())
    large = n_params * 4 > external_data_above_bytes
    if split:
        from da3_ros.export.split_export import export_split

        return export_split(model, output, views=views, height=height, width=width, variant=variant,
                            ref_view=ref_view, pose_conditioned=pose_conditioned, with_rays=with_rays,
                            with_descriptor=with_descriptor, opset=opset,
                            precision=precision, checkpoint=checkpoint, checkpoint_digest=checkpoint_digest,
                            large=large, say=say, t0=t0)
    wrapper = make_export_wrapper(model, ref_view=ref_view, pose_conditioned=pose_conditioned,
                                  with_rays=with_rays, with_descriptor=with_descriptor)
    inputs = example_inputs(views, height, width, pose_conditioned=pose_conditioned)
    say(f"probing outputs of {variant} for N={views}, {height}x{width}")
    shapes = probe_outputs(wrapper, inputs)
    input_specs = [TensorSpec(IMAGES_INPUT, "uint8", [1, views, height, width, 3])]
    if pose_conditioned:
        input_specs.append(TensorSpec(POSE_ENCODING_INPUT, "float32", [1, views, POSE_ENCODING_DIM]))
    output_specs = [TensorSpec(k, "float32", list(s)) for k, s in shapes.items()]
    say(f"tracing + exporting (legacy exporter, opset {opset}, {n_params / 1e6:.1f} M parameters)")
    proto, graph_info = trace_graph(wrapper, inputs, output, input_specs, output_specs, opset=opset,
                                    precision=precision, large=large, say=say)
    sidecar = Sidecar(
        variant=variant, views=views, height=height, width=width, ref_view=str(ref_view),
        inputs=input_specs, outputs=output_specs, precision=precision,
        checkpoint_sha256=checkpoint_digest or (checkpoint_sha256(checkpoint) if checkpoint else ""),
        exporter_version=EXPORTER_VERSION, artifact="onnx", pose_conditioned=pose_conditioned,
        with_rays=with_rays, with_descriptor=with_descriptor, opset=opset,
        depth_unit=capabilities.depth_unit, capabilities=capabilities.to_dict(),
        checkpoint=str(checkpoint),
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        extra={"torch_version": torch.__version__, "onnx_version": onnx.__version__,
               "parameters": int(n_params), **graph_info},
    )
    say(f"writing {output}" + (" (+ external data)" if large else ""))
    if save_graph(proto, output, sidecar.to_metadata_props(), large):
        sidecar.extra["external_data"] = output.name + ".data"
    sidecar.extra["export_s"] = round(time.perf_counter() - t0, 2)
    sidecar.extra["export_peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_sidecar(sidecar, output)
    say(f"done: {output} ({output.stat().st_size / 1e6:.1f} MB) and {output.with_suffix('.json')}")
    return sidecar


def trace_graph(wrapper, inputs, output: Path, input_specs, output_specs, *, opset: int, precision: str,
                large: bool, say=lambda m: None):
    """Trace ``wrapper`` on ``inputs`` to ONNX, check that the graph is static and apply ``precision``.

    Returns ``(onnx.ModelProto with its weights loaded, extra sidecar fields: nodes, op_histogram,
    quantisation facts)``; nothing is left on disk (the temporary folder beside ``output`` is removed)."""
    import onnx
    import torch

    tmp_dir = output.parent / f".{output.name}.export"
    tmp_dir.mkdir(exist_ok=True)
    tmp_path = tmp_dir / output.name
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, inputs, str(tmp_path), dynamo=False, opset_version=opset,
                              input_names=[s.name for s in input_specs],
                              output_names=[s.name for s in output_specs], do_constant_folding=True)
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
    finally:
        for f in tmp_dir.iterdir():
            f.unlink()
        tmp_dir.rmdir()
    return proto, {"nodes": len(proto.graph.node), "op_histogram": op_histogram(proto), **quantization}


def save_graph(proto, output: Path, metadata_props, large: bool) -> bool:
    """Write ``proto`` to ``output`` with ``metadata_props`` (replacing any), weights to ``output.data`` when
    ``large``; stale files of an earlier export are removed first. Returns whether external data was written."""
    import onnx

    del proto.metadata_props[:]
    for key, value in metadata_props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    for stale in (output, Path(str(output) + ".data")):
        if stale.exists():
            stale.unlink()
    if large:
        onnx.save_model(proto, str(output), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=output.name + ".data", size_threshold=1024)
    else:
        onnx.save_model(proto, str(output))
    return large


def load_checkpoint_model(checkpoint: str, variant: Optional[str] = None):
    """Load a checkpoint (HF dir, .safetensors/.pth file, or repo id) strictly, fp32, CPU, eval."""
    from da3_ros.model import load_model

    return load_model(checkpoint, variant=variant, device="cpu").float().eval()


def export_onnx(checkpoint: str, output: Union[str, os.PathLike], *, variant: Optional[str] = None,
                verbose: bool = True, **options) -> Sidecar:
    """Checkpoint -> ONNX + sidecar (``da3-export onnx``). ``options`` are those of
    :func:`export_model_to_onnx` (views, height, width, ref_view, pose_conditioned, with_rays, with_descriptor, opset,
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
