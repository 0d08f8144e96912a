"""`create_backend`: choose and construct an inference backend from configuration (node parameters).

``kind`` is one of ``BACKEND_KINDS``:
- ``"torch"``: ``model_file_path`` is a checkpoint (HF-layout directory, ``.safetensors``/``.pth``
  file, or an ONNX sidecar's checkpoint is NOT used); runs the PyTorch model on ``device``
  (``cpu``/``cuda``) in ``precision`` (fp32/fp16/bf16).
- ``"onnxruntime"``: ``model_file_path`` is an exported ``.onnx`` with its sidecar ``.json``;
  ``providers`` is the ONNX Runtime provider list (default CPU).
- ``"tensorrt"``: ``engine_file_path`` is a ``.engine`` with its sidecar; when it is missing (or
  ``force_engine_update``) it is built from the ONNX at ``model_file_path`` first.
- ``"oracle"``: ``model_file_path`` is an oracle spec (da3_ros.backends.oracle_backend): ground truth
  of the synthetic world with noise instead of a network (demo ``--oracle`` mode and tests only).

Every kind is one entry of ``_CONSTRUCTORS`` (its constructor imports its runtime lazily), so the
callers -- the node's backend_setup, the CLI, the benchmarks -- only ever call :func:`create_backend`.

``variant``/``views``/``height``/``width``/``ref_view`` left at None (or 0 / "") mean "whatever the model
file says" (sidecar / engine metadata; the torch backend's checkpoint has no fixed window and uses
``torch_backend.DEFAULT_*``). A value given explicitly must match: every backend checks its model file
and raises :class:`EngineMismatchError` naming each difference and saying what to rebuild. A backend that
cannot run here raises :class:`BackendUnavailableError` with the reason, at construction time.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

from da3_ros.artifact.errors import BackendUnavailableError
from da3_ros.artifact.ref_view import parse_optional_ref_view
from da3_ros.backends.base import InferenceBackend


def _torch(o: Dict[str, Any], window: Dict[str, Any]) -> InferenceBackend:
    if not o["model_file_path"]:
        raise BackendUnavailableError("torch backend needs model_file_path = a DA3 checkpoint")
    try:
        from da3_ros.backends.torch_backend import TorchBackend
    except ImportError as exc:  # torch or the model package missing
        raise BackendUnavailableError(f"torch backend: torch/model not importable ({exc})") from exc
    return TorchBackend(o["model_file_path"], device=o["device"], precision=o["precision"],
                        pose_conditioned=o["pose_conditioned"], with_rays=o["with_rays"],
                        num_threads=o["num_threads"], with_descriptor=o["with_descriptor"], **window)


def _onnxruntime(o: Dict[str, Any], window: Dict[str, Any]) -> InferenceBackend:
    if not o["model_file_path"]:
        raise BackendUnavailableError("onnxruntime backend needs model_file_path = an exported .onnx file")
    try:
        from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    except ImportError as exc:
        raise BackendUnavailableError(f"onnxruntime not importable ({exc})") from exc
    return OnnxRuntimeBackend(o["model_file_path"], providers=o["providers"], num_threads=o["num_threads"],
                              fused_attention=o["onnx_fused_attention"], **window)


def _tensorrt(o: Dict[str, Any], window: Dict[str, Any]) -> InferenceBackend:
    from da3_ros.backends.tensorrt_backend import TensorRTBackend  # imports TensorRT lazily itself

    return TensorRTBackend(o["engine_file_path"], onnx_path=o["model_file_path"], precision=o["precision"],
                           force_engine_update=o["force_engine_update"], workspace_gb=o["workspace_gb"],
                           timing_cache_path=o["timing_cache_path"], use_cuda_graph=o["use_cuda_graph"],
                           device=o["device"], **window)


def _oracle(o: Dict[str, Any], window: Dict[str, Any]) -> InferenceBackend:
    from da3_ros.backends.oracle_backend import OracleBackend

    return OracleBackend(o["model_file_path"], **window)


#: kind -> constructor(options, window); the order is the one error messages list.
_CONSTRUCTORS: Dict[str, Callable[[Dict[str, Any], Dict[str, Any]], InferenceBackend]] = {
    "torch": _torch, "onnxruntime": _onnxruntime, "tensorrt": _tensorrt, "oracle": _oracle,
}
BACKEND_KINDS = tuple(_CONSTRUCTORS)
#: other accepted spellings of a kind
BACKEND_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt"}


def create_backend(
    kind: str,
    *,
    model_file_path: str = "",
    engine_file_path: str = "",
    variant: Optional[str] = None,
    views: Optional[int] = None,
    height: Optional[int] = None,
    width: Optional[int] = None,
    device: str = "cpu",
    precision: str = "fp32",
    ref_view: Optional[str] = None,
    providers: Optional[Sequence[str]] = None,
    force_engine_update: bool = False,
    pose_conditioned: bool = False,
    with_rays: bool = False,
    with_descriptor: bool = False,
    num_threads: int = 0,
    workspace_gb: float = 4.0,
    timing_cache_path: str = "",
    use_cuda_graph: bool = False,
    onnx_fused_attention: bool = True,
) -> InferenceBackend:
    """Construct the backend named ``kind`` (see the module docstring).

    ``variant=None`` accepts whatever the model file records (checkpoint config / sidecar).
    ``with_descriptor``: the torch backend also returns the place-recognition ``descriptor`` (an exported graph
    or engine returns it when it was exported ``--with-descriptor``; the oracle always does).
    ``num_threads`` > 0 limits CPU threads (torch / ORT intra-op). ``onnx_fused_attention`` lets the
    ONNX Runtime backend run attention as its fused MultiHeadAttention op. Raises
    :class:`BackendUnavailableError` (why it cannot run here) or
    :class:`~da3_ros.artifact.errors.EngineMismatchError` (model file does not fit the configuration).
    """
    kind = str(kind).strip().lower()
    kind = BACKEND_ALIASES.get(kind, kind)
    if kind not in _CONSTRUCTORS:
        raise BackendUnavailableError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")
    window = dict(variant=variant or None, views=int(views) if views else None,
                  height=int(height) if height else None, width=int(width) if width else None,
                  ref_view=_ref_view_text(ref_view))
    options = dict(model_file_path=model_file_path, engine_file_path=engine_file_path, device=device,
                   precision=precision, providers=providers, force_engine_update=force_engine_update,
                   pose_conditioned=pose_conditioned, with_rays=with_rays, with_descriptor=with_descriptor,
                   num_threads=num_threads,
                   workspace_gb=workspace_gb, timing_cache_path=timing_cache_path, use_cuda_graph=use_cuda_graph,
                   onnx_fused_attention=onnx_fused_attention)
    return _CONSTRUCTORS[kind](options, window)


def _ref_view_text(ref_view) -> Optional[str]:
    """None / "" -> None (the model file's); else the checked name or index as the sidecar stores it."""
    parsed = parse_optional_ref_view(ref_view)
    return None if parsed is None else str(parsed)
