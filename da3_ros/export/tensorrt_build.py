"""Build TensorRT engines from exported DA3 ONNX graphs (TensorRT 10 Python API, or TensorRT-RTX).

Module choice: ``import tensorrt`` (TensorRT 10, data-centre and Jetson GPUs); if that fails,
``import tensorrt_rtx`` (TensorRT-RTX, RTX GPUs; builds ahead of time without a GPU). The two
differ in precision control:

- TensorRT 10 builds a *weakly typed* network: ``--precision fp16|bf16`` sets the builder flag and
  the layers that overflow in reduced precision -- normalisations (LayerNorm), softmax and ``exp``
  (depth / confidence activations), plus reductions and ``pow``/``sqrt`` of decomposed norms -- are
  pinned to FP32 (layer precision + output type, ``PREFER_PRECISION_CONSTRAINTS``).
- TensorRT-RTX only builds *strongly typed* networks: precision comes from the ONNX graph's dtypes,
  so the engine precision must equal the graph's: ``fp32`` from the default export, ``fp16`` from
  ``da3-export onnx --precision fp16`` (mixed graph, da3_ros.export.fp16_conversion). Its timing
  cache calls are no-ops.

A split ONNX artefact (``da3-export onnx --split``) gives two engines from one ``da3-export engine`` call:
``FILE.engine`` (the window graph) and ``FILE.encoder.engine`` (the per-view encoder), listed with their
SHA-256 in the one engine sidecar's ``split``.

The engine sidecar (``FILE.json``) copies the ONNX sidecar and adds ``tensorrt_module``,
``tensorrt_version``, ``gpu_name``, ``compute_capability`` (TensorRT-RTX without a GPU: the target
list, e.g. ``"SM86"``, and an empty ``gpu_name``).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Optional, Sequence, Tuple

from da3_ros.artifact.errors import BackendUnavailableError
from da3_ros.artifact.precision import PRECISIONS
from da3_ros.artifact.sidecar import (Sidecar, file_sha256, read_sidecar, split_graph_path, validate_split,
                                      write_sidecar)
from da3_ros.artifact.tensors import ENCODER_GRAPH, WINDOW_GRAPH

TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx")


def import_tensorrt(preferred: Optional[str] = None) -> Tuple[ModuleType, str]:
    """Return ``(module, name)`` of the first importable TensorRT module.

    Raises :class:`BackendUnavailableError` naming every module tried and why it failed.
    """
    import importlib

    names = (preferred,) if preferred else TENSORRT_MODULES
    reasons = []
    for name in names:
        try:
            return importlib.import_module(name), name
        except Exception as exc:  # ImportError, or a broken native library (OSError)
            reasons.append(f"{name} not importable ({type(exc).__name__}: {exc})")
    raise BackendUnavailableError("; ".join(reasons))


def _trt_module_version(trt: ModuleType) -> str:
    return str(getattr(trt, "__version__", "unknown"))


def current_gpu() -> Tuple[str, str]:
    """``(gpu_name, "major.minor")`` of CUDA device 0 via torch, or ``("", "")`` without a GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except Exception:
        pass
    return "", ""


@dataclasses.dataclass
class EngineBuildOptions:
    """Options of one engine build (defaults = the CLI defaults).

    precision: ``fp16`` (default on TensorRT 10), ``bf16`` or ``fp32``; ``None`` picks fp16 on
    TensorRT 10 and the graph's precision on TensorRT-RTX (and for an fp16 graph anywhere).
    workspace_gb: workspace memory-pool limit.
    timing_cache_path: persistent timing cache, read if present and written after the build.
    keep_fp32: pin overflow-prone layers to FP32 in reduced precision (TensorRT 10 only).
    compute_capabilities: TensorRT-RTX targets (e.g. ``["SM86", "SM89"]``); ``None``: the current
    GPU, or ``SM86`` when no GPU is visible (ahead-of-time build).
    """

    precision: Optional[str] = None
    workspace_gb: float = 4.0
    timing_cache_path: str = ""
    keep_fp32: bool = True
    compute_capabilities: Optional[Sequence[str]] = None
    builder_optimization_level: Optional[int] = None
    module: Optional[str] = None  # force "tensorrt" or "tensorrt_rtx"
    verbose: bool = False
    graph_precision: str = "fp32"  # the ONNX graph's precision (its sidecar); build_engine sets it


class _Progress:
    """Prints TensorRT build phases to stderr (subclass of the module's IProgressMonitor)."""

    @staticmethod
    def make(trt: ModuleType):
        base = getattr(trt, "IProgressMonitor", None)
        if base is None:
            return None

        class Monitor(base):  # type: ignore[misc, valid-type]
            def __init__(self):
                base.__init__(self)
                self._t0 = time.perf_counter()
                self._depth = {}

            def phase_start(self, phase_name, parent_phase, num_steps):
                depth = 0 if parent_phase is None else self._depth.get(parent_phase, 0) + 1
                self._depth[phase_name] = depth
                if depth <= 1:
                    print(f"[da3-export engine] {time.perf_counter() - self._t0:7.1f}s {'  ' * depth}"
                          f"{phase_name} ({num_steps} steps)", file=sys.stderr, flush=True)

            def step_complete(self, phase_name, step):
                return True  # never cancel

            def phase_finish(self, phase_name):
                self._depth.pop(phase_name, None)

        return Monitor()


#: Layer kinds kept in FP32 in reduced-precision builds (see the module docstring).
def _fp32_layer(trt: ModuleType, layer) -> bool:
    lt = trt.LayerType
    if layer.type in (lt.NORMALIZATION, lt.SOFTMAX, lt.REDUCE):
        return True
    if layer.type == lt.UNARY:
        layer.__class__ = trt.IUnaryLayer
        return layer.op in (trt.UnaryOperation.EXP, trt.UnaryOperation.SQRT, trt.UnaryOperation.LOG)
    if layer.type == lt.ELEMENTWISE:
        layer.__class__ = trt.IElementWiseLayer
        return layer.op == trt.ElementWiseOperation.POW
    return False


def _pin_fp32_layers(trt: ModuleType, network) -> int:
    count = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not _fp32_layer(trt, layer):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.float32, trt.float16, trt.bfloat16):
                layer.set_output_type(j, trt.float32)
        count += 1
    return count


def parse_onnx(trt: ModuleType, onnx_path: os.PathLike | str, logger=None):
    """Parse an ONNX file (external data next to it is found) -> ``(builder, network, parser)``."""
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)).splitlines()[0] for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    return builder, network, parser


def _engine_precision(onnx_path: os.PathLike | str, options: EngineBuildOptions, is_rtx: bool) -> str:
    """The engine precision of a build: ``options.precision``, or the default (module docstring); checked.

    Raises:
        ValueError: an unknown precision, one TensorRT-RTX cannot build from this graph, or a precision
            other than fp16 for an fp16 graph.
    """
    graph = options.graph_precision
    precision = options.precision or (graph if graph != "fp32" or is_rtx else "fp16")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if is_rtx and precision != graph:
        export_hint = (" or a graph exported with da3-export onnx ... --precision fp16" if precision == "fp16"
                       else "")
        raise ValueError(
            f"tensorrt_rtx builds strongly typed networks: precision comes from the ONNX graph ({graph} here), "
            f"so --precision {precision} is not available; use --precision {graph}{export_hint}"
        )
    if graph == "fp16" and precision != "fp16":
        raise ValueError(f"{onnx_path} is an fp16 graph: build it with --precision fp16, or export an fp32 graph "
                         f"for --precision {precision}")
    return precision


def _set_reduced_precision(trt: ModuleType, config, network, precision: str, keep_fp32: bool) -> int:
    """TensorRT 10 (weakly typed): the precision's builder flag and the FP32 pins; returns the pinned count."""
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    if precision != "fp32" and keep_fp32:
        pinned = _pin_fp32_layers(trt, network)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        return pinned
    return 0


def _set_rtx_targets(trt: ModuleType, config, compute_capabilities: Optional[Sequence[str]], gpu_name: str,
                     compute_capability: str) -> str:
    """TensorRT-RTX: the compute-capability targets of the build; returns the sidecar's compute_capability
    (the current GPU's, or without a GPU the target list such as ``"SM86"``)."""
    targets = list(compute_capabilities or ([] if gpu_name else ["SM86"]))
    if targets:
        config.num_compute_capabilities = len(targets)
        for i, cc in enumerate(targets):
            config.set_compute_capability(getattr(trt.ComputeCapability, cc.upper()), i)
        if not gpu_name:
            compute_capability = ",".join(t.upper() for t in targets)
    return compute_capability


def _load_timing_cache(config, timing_cache_path: str):
    """Set the build's timing cache, read from ``timing_cache_path`` if the file exists (else empty)."""
    cache_bytes = b""
    if Path(timing_cache_path).is_file():
        cache_bytes = Path(timing_cache_path).read_bytes()
    timing_cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(timing_cache, ignore_mismatch=False)
    return timing_cache


def _save_timing_cache(config, timing_cache_path: str) -> None:
    path = Path(timing_cache_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(memoryview(config.get_timing_cache().serialize()))


def build_serialized_engine(onnx_path: os.PathLike | str, options: EngineBuildOptions):
    """Parse + build; returns ``(serialized_engine_bytes, info)`` where info has the sidecar fields."""
    trt, module_name = import_tensorrt(options.module)
    is_rtx = module_name == "tensorrt_rtx"
    precision = _engine_precision(onnx_path, options, is_rtx)
    logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder, network, _parser = parse_onnx(trt, onnx_path, logger)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gb * (1 << 30)))
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = int(options.builder_optimization_level)
    monitor = _Progress.make(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    pinned = 0 if is_rtx else _set_reduced_precision(trt, config, network, precision, options.keep_fp32)
    gpu_name, compute_capability = current_gpu()
    if is_rtx:
        compute_capability = _set_rtx_targets(trt, config, options.compute_capabilities, gpu_name,
                                              compute_capability)
    timing_cache = None
    if options.timing_cache_path and not is_rtx:
        timing_cache = _load_timing_cache(config, options.timing_cache_path)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT ({module_name}) failed to build an engine from {onnx_path}; "
                           "see the TensorRT log above")
    build_s = time.perf_counter() - t0
    if timing_cache is not None:
        _save_timing_cache(config, options.timing_cache_path)
    info = dict(tensorrt_module=module_name, tensorrt_version=_trt_module_version(trt), gpu_name=gpu_name,
                compute_capability=compute_capability, precision=precision, build_s=build_s,
                fp32_pinned_layers=pinned, num_layers=network.num_layers)
    return serialized, info


def build_engine(onnx_path: os.PathLike | str, engine_path: os.PathLike | str,
                 options: Optional[EngineBuildOptions] = None) -> Sidecar:
    """Build ``engine_path`` (+ its sidecar) from ``onnx_path`` (+ its sidecar); return the sidecar."""
    options = options or EngineBuildOptions()
    onnx_sidecar = read_sidecar(onnx_path)
    if onnx_sidecar.precision not in ("fp32", "fp16"):
        raise ValueError(
            f"{onnx_path} has precision {onnx_sidecar.precision} (ONNX Runtime only); TensorRT builds from the "
            f"fp32 export and picks its own precision: {onnx_sidecar.rebuild_hint()}")
    options = dataclasses.replace(options, graph_precision=onnx_sidecar.precision)
    engine_path = Path(engine_path)
    split = None
    if onnx_sidecar.split is not None:
        onnx_paths = validate_split(onnx_sidecar, onnx_path)
        split = dataclasses.replace(onnx_sidecar.split)
        graphs = {}
        for role in (ENCODER_GRAPH, WINDOW_GRAPH):
            serialized, info = build_serialized_engine(onnx_paths[role], options)
            target = split_graph_path(engine_path, role)
            _write_engine(serialized, target)
            graphs[role] = dataclasses.replace(split.graphs()[role], file=target.name, sha256=file_sha256(target))
        split.encoder, split.window = graphs[ENCODER_GRAPH], graphs[WINDOW_GRAPH]
    else:
        serialized, info = build_serialized_engine(onnx_path, options)
        _write_engine(serialized, engine_path)
    sidecar = dataclasses.replace(
        onnx_sidecar,
        artifact="engine",
        precision=info["precision"],
        onnx_precision=onnx_sidecar.precision,
        onnx_sha256=file_sha256(onnx_path),
        tensorrt_module=info["tensorrt_module"],
        tensorrt_version=info["tensorrt_version"],
        gpu_name=info["gpu_name"],
        compute_capability=info["compute_capability"],
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=split,
        extra={**onnx_sidecar.extra, "engine_build_s": round(info["build_s"], 3),
               "fp32_pinned_layers": info["fp32_pinned_layers"],
               "workspace_gb": options.workspace_gb},
    )
    write_sidecar(sidecar, engine_path)
    return sidecar


def _write_engine(serialized, engine_path: Path) -> None:
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_suffix(engine_path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(serialized))
    os.replace(tmp, engine_path)
