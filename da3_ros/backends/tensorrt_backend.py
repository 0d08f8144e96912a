"""`TensorRTBackend`: runs a DA3 TensorRT engine (TensorRT 10 runtime API, or TensorRT-RTX).

- The engine is ``engine_file_path`` with its sidecar ``FILE.json``. If it is missing, or
  ``force_engine_update`` is set, it is built first from the ONNX at ``onnx_path``
  (:mod:`da3_ros.export.tensorrt_build`).
- The sidecar must match the configuration (variant/N/H/W/ref_view) and the running TensorRT
  module/version and GPU (name, compute capability); otherwise :class:`EngineMismatchError` says
  what to rebuild.
- Device buffers are torch CUDA tensors allocated once; every I/O tensor address is bound once
  (``set_tensor_address``); inference is ``execute_async_v3`` on the backend's own CUDA stream;
  with ``use_cuda_graph`` the enqueue is captured once in a CUDA graph and replayed.
- TensorRT older than ``MIN_TENSORRT_VERSION`` (10.14) is refused before anything is built or loaded
  (``tensorrt_version_problem``): with TensorRT 10.3 -- JetPack 6.1 / 6.2's -- DA3 engines give frame-to-frame
  scale jumps. README "Jetson" says what to install. TensorRT-RTX (``tensorrt_rtx``, versions of its own) is not
  subject to this rule.
- A split artefact (two engines, ``da3-export engine`` on a ``--split`` export) runs the encoder engine once per
  view new to the window (``view_keys``; all views without them) and keeps each view's tokens on the GPU
  (da3_ros.backends.view_token_cache); they are copied device-to-device into the window engine's input.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from da3_ros.artifact.errors import BackendUnavailableError, EngineMismatchError
from da3_ros.artifact.sidecar import GraphSpec, read_sidecar, validate_engine_runtime, validate_sidecar, validate_split
from da3_ros.artifact.tensors import ENCODER_GRAPH, IMAGES_INPUT, SELECTION_TOKEN, VIEW_TOKENS
from da3_ros.backends.base import InferenceBackend
from da3_ros.backends.prediction import WindowPrediction
from da3_ros.backends.view_token_cache import ViewTokenCache
from da3_ros.export.tensorrt_build import EngineBuildOptions, build_engine, current_gpu, import_tensorrt


#: the oldest TensorRT whose DA3 engines keep the scale from frame to frame (10.3 does not)
MIN_TENSORRT_VERSION: Tuple[int, int] = (10, 14)


def tensorrt_version_problem(version: str, module: str = "tensorrt") -> Optional[str]:
    """Why TensorRT ``version`` (``tensorrt.__version__``, e.g. "10.3.0.30") cannot run DA3 engines, or None.

    The rule: ``tensorrt`` >= ``MIN_TENSORRT_VERSION`` (major.minor); ``tensorrt_rtx`` is not checked."""
    if module != "tensorrt":
        return None
    parts = str(version).strip().split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        return (f"cannot read the TensorRT version {version!r}; DA3 engines need TensorRT >= "
                f"{MIN_TENSORRT_VERSION[0]}.{MIN_TENSORRT_VERSION[1]}")
    if major_minor >= MIN_TENSORRT_VERSION:
        return None
    need = f"{MIN_TENSORRT_VERSION[0]}.{MIN_TENSORRT_VERSION[1]}"
    return (f"TensorRT {version} is too old for DA3 engines: they need TensorRT >= {need} (TensorRT 10.3, "
            "JetPack 6.1 / 6.2's, gives frame-to-frame scale jumps). Install TensorRT >= "
            f"{need} (on a Jetson: a JetPack whose TensorRT is >= {need}, with a CUDA build of torch), rebuild the "
            "engine with it (da3-export engine), or run the ONNX model with backend onnxruntime; see README "
            "'Jetson'")


def _torch_dtype(trt, dtype):
    import torch

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.uint8: torch.uint8, trt.bool: torch.bool}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise EngineMismatchError(f"engine tensor dtype {dtype} is not supported by this backend")
    return table[dtype]


class _EngineRunner:
    """One deserialised engine: its execution context, one device buffer per I/O tensor (addresses bound once),
    an optional CUDA graph of the enqueue; runs on the caller's stream."""

    def __init__(self, trt, torch, runtime, engine_path: Path, spec: GraphSpec, device, stream,
                 use_cuda_graph: bool) -> None:
        self._torch = torch
        self._stream = stream
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"TensorRT could not deserialise {engine_path}; rebuild it with "
                                      f"da3-export engine (or force_engine_update: true)")
        self.context = self.engine.create_execution_context()
        self.inputs: Dict[str, Any] = {}
        self.outputs: Dict[str, Any] = {}
        for i in range(self.engine.num_io_tensors):
            tname = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(tname))
            if any(s < 0 for s in shape):
                raise EngineMismatchError(f"engine {engine_path} has a dynamic shape {shape} for {tname}; "
                                          "export with fixed N/H/W")
            buf = torch.empty(shape, dtype=_torch_dtype(trt, self.engine.get_tensor_dtype(tname)), device=device)
            self.context.set_tensor_address(tname, buf.data_ptr())
            (self.inputs if self.engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT else self.outputs)[tname] = buf
        if list(self.inputs) != spec.input_names or sorted(self.outputs) != sorted(spec.output_names):
            raise EngineMismatchError(f"engine {engine_path} I/O {list(self.inputs)}->{list(self.outputs)} "
                                      f"differs from its sidecar; rebuild it")
        self.graph = None
        if use_cuda_graph:
            with torch.cuda.stream(stream):
                self.enqueue()  # warm-up enqueue (lets TensorRT finish lazy initialisation) before capture
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                self.enqueue()
            self.graph = graph

    def enqueue(self) -> None:
        if not self.context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def run(self) -> None:
        """Enqueue one run on the stream (call inside ``torch.cuda.stream(stream)``)."""
        if self.graph is not None:
            self.graph.replay()
        else:
            self.enqueue()

    def close(self) -> None:
        self.graph = None
        self.context = None
        self.engine = None
        self.inputs.clear()
        self.outputs.clear()


class TensorRTBackend(InferenceBackend):
    name = "tensorrt"

    def __init__(self, engine_file_path: str, *, onnx_path: str = "", variant: Optional[str] = None,
                 views: Optional[int] = None, height: Optional[int] = None, width: Optional[int] = None,
                 ref_view: Optional[str] = None, precision: Optional[str] = None,
                 force_engine_update: bool = False, workspace_gb: float = 4.0, timing_cache_path: str = "",
                 use_cuda_graph: bool = False, device: str = "cuda") -> None:
        trt, module_name = import_tensorrt()  # BackendUnavailableError("tensorrt not importable ...")
        problem = tensorrt_version_problem(str(getattr(trt, "__version__", "unknown")), module_name)
        if problem:
            raise BackendUnavailableError(problem)
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(f"tensorrt backend needs torch for CUDA buffers ({exc})") from exc
        if not torch.cuda.is_available():
            raise BackendUnavailableError("tensorrt backend needs a CUDA GPU (torch.cuda.is_available() is False)")
        if not engine_file_path:
            raise BackendUnavailableError("tensorrt backend needs engine_file_path")
        engine_path = Path(engine_file_path)
        if force_engine_update or not engine_path.is_file():
            if not onnx_path or not Path(onnx_path).is_file():
                raise BackendUnavailableError(
                    f"engine {engine_path} missing and no ONNX model to build it from "
                    f"(model_file_path={onnx_path!r}); run da3-export onnx then da3-export engine")
            build_engine(onnx_path, engine_path, EngineBuildOptions(
                precision=precision, workspace_gb=workspace_gb, timing_cache_path=timing_cache_path,
                module=module_name))
        sidecar = read_sidecar(engine_path)
        validate_sidecar(sidecar, model_path=engine_path, variant=variant, views=views, height=height,
                         width=width, ref_view=ref_view)
        gpu_name, cc = current_gpu()
        validate_engine_runtime(sidecar, engine_path=engine_path, tensorrt_version=str(trt.__version__),
                                tensorrt_module=module_name, gpu_name=gpu_name, compute_capability=cc)
        super().__init__(views=sidecar.views, height=sidecar.height, width=sidecar.width,
                         variant=sidecar.variant, ref_view=sidecar.ref_view,
                         capabilities=sidecar.model_capabilities, pose_conditioned=sidecar.pose_conditioned)
        self.sidecar = sidecar
        self.path = engine_path
        self._trt = trt
        self._torch = torch
        self._device = torch.device(device if str(device).startswith("cuda") else "cuda")
        t0 = time.perf_counter()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._stream = torch.cuda.Stream(device=self._device)
        self.use_cuda_graph = bool(use_cuda_graph)
        self._encoder: Optional[_EngineRunner] = None
        self.token_cache: Optional[ViewTokenCache] = None
        if sidecar.split is not None:
            paths = validate_split(sidecar, engine_path)
            self._encoder = _EngineRunner(trt, torch, self._runtime, paths[ENCODER_GRAPH], sidecar.split.encoder,
                                          self._device, self._stream, self.use_cuda_graph)
            self.token_cache = ViewTokenCache()
            spec = sidecar.split.window
        else:
            spec = GraphSpec(engine_path.name, sidecar.inputs, sidecar.outputs)
        self._window = _EngineRunner(trt, torch, self._runtime, engine_path, spec, self._device, self._stream,
                                     self.use_cuda_graph)
        self._host_outputs = {name: torch.empty(tuple(buf.shape), dtype=torch.float32, pin_memory=True)
                              for name, buf in self._window.outputs.items()}
        # a --with-descriptor split artefact: the encoder gives each view's descriptor (SplitSpec.per_view_outputs)
        self._per_view_outputs = sidecar.split.per_view_outputs if sidecar.split is not None else []
        for name in self._per_view_outputs:
            shape = next(o.shape for o in sidecar.outputs if o.name == name)
            self._host_outputs[name] = torch.empty(tuple(shape), dtype=torch.float32, pin_memory=True)
        image_buffer = (self._encoder or self._window).inputs[IMAGES_INPUT]
        self._host_images = torch.empty(tuple(image_buffer.shape), dtype=torch.uint8, pin_memory=True)
        pose = self._window.inputs.get("pose_encoding")
        self._host_pose = (None if pose is None
                           else torch.empty(tuple(pose.shape), dtype=torch.float32, pin_memory=True))
        self.load_s = time.perf_counter() - t0

    @property
    def split(self) -> bool:
        """True for a split artefact (encoder + window engines)."""
        return self._encoder is not None

    def _encode_view(self, images: np.ndarray, v: int):
        """Run the encoder on view ``v``; returns GPU copies of its (tokens (T, C), selection token (C,),
        *per-view outputs (the descriptor (C,) of --with-descriptor artefacts))."""
        torch = self._torch
        self._host_images.numpy()[0, 0] = images[v]
        with torch.cuda.stream(self._stream):
            self._encoder.inputs[IMAGES_INPUT].copy_(self._host_images, non_blocking=True)
            self._encoder.run()
            return tuple(self._encoder.outputs[name][0, 0].clone()
                         for name in [VIEW_TOKENS, SELECTION_TOKEN] + self._per_view_outputs)

    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        return self._infer_views(images, pose_encoding, None)

    def _infer_views(self, images: np.ndarray, pose_encoding: Optional[np.ndarray], view_keys) -> WindowPrediction:
        torch = self._torch
        t0 = time.perf_counter()
        encoded = 0
        if self.split:
            if view_keys is None:
                values = [self._encode_view(images, v) for v in range(len(images))]
                encoded = len(values)
            else:
                values, encoded = self.token_cache.tokens_for(view_keys, images,
                                                              lambda v: self._encode_view(images, v))
        else:
            self._host_images.numpy()[0] = images
        if pose_encoding is not None:
            self._host_pose.numpy()[0] = pose_encoding
        with torch.cuda.stream(self._stream):
            inputs = self._window.inputs
            if self.split:
                for v, value in enumerate(values):
                    inputs[VIEW_TOKENS][0, v].copy_(value[0], non_blocking=True)
                    if SELECTION_TOKEN in inputs:
                        inputs[SELECTION_TOKEN][0, v].copy_(value[1], non_blocking=True)
                    for j, name in enumerate(self._per_view_outputs):
                        self._host_outputs[name][0, v].copy_(value[2 + j], non_blocking=True)
            else:
                inputs[IMAGES_INPUT].copy_(self._host_images, non_blocking=True)
            if pose_encoding is not None:
                inputs["pose_encoding"].copy_(self._host_pose, non_blocking=True)
            self._window.run()
            for name, buf in self._window.outputs.items():
                self._host_outputs[name].copy_(buf, non_blocking=True)
        self._stream.synchronize()
        infer_s = time.perf_counter() - t0
        # copy: the pinned staging buffers are reused by the next call
        outputs = {name: host.numpy().copy() for name, host in self._host_outputs.items()}
        timings = {"infer_s": infer_s}
        if self.split:
            timings["encoded_views"] = float(encoded)
        return WindowPrediction.from_batched(outputs, variant=self.variant, ref_view=self.ref_view, timings=timings)

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d.update(engine_file=str(self.path), precision=self.sidecar.precision,
                 tensorrt_module=self.sidecar.tensorrt_module, tensorrt_version=self.sidecar.tensorrt_version,
                 gpu_name=self.sidecar.gpu_name, compute_capability=self.sidecar.compute_capability,
                 cuda_graph=self._window.graph is not None, load_s=round(self.load_s, 3), split=self.split)
        if self.token_cache is not None:
            d.update(cached_views=len(self.token_cache), encoded_views_total=self.token_cache.encoded_total,
                     reused_views_total=self.token_cache.reused_total)
        return d

    def close(self) -> None:
        for runner in (self._encoder, self._window):
            if runner is not None:
                runner.close()
        if self.token_cache is not None:
            self.token_cache.clear()
        super().close()
