"""`create_backend`: choose and construct an inference backend from configuration (node parameters).

``kind`` is one of ``BACKEND_KINDS``:
- ``"torch"``: ``model_file_path`` is a checkpoint (HF-layout directory, ``.safetensors``/``.pth``
  file, or an ONNX sidecar's checkpoint is NOT used); runs the PyTorch model on ``device``
  (``cpu``/``cuda``) in ``precision`` (fp32/fp16/bf16).
- ``"onnxruntime"``: ``model_file_path`` is an exported ``.onnx`` with its sidecar ``.json``;
  ``providers`` is the ONNX Runtime provider list (default CPU).
- ``"tensorrt"``: ``engine_file_path`` is a ``.engine`` with its sidecar; when it is missing (or
  ``force_engine_update``) it is built from the ONNX at ``model_file_path`` first.

``variant``/``views``/``height``/``width``/``ref_view`` left at None (or 0 / "") mean "whatever the model
file says" (sidecar / engine metadata; the torch backend's checkpoint has no fixed window and uses
``torch_backend.DEFAULT_*``). A value given explicitly must match: every backend checks its model file
and raises :class:`EngineMismatchError` naming each difference and saying what to rebuild. A backend that
cannot run here raises :class:`BackendUnavailableError` with the reason, at construction time.
"""
from __future__ import annotations

from typing import Optional, Sequence

from da3_ros.backends.base import BackendUnavailableError, InferenceBackend

BACKEND_KINDS = ("torch", "onnxruntime", "tensorrt")


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
    num_threads: int = 0,
    workspace_gb: float = 4.0,
    timing_cache_path: str = "",
    use_cuda_graph: bool = False,
    onnx_fused_attention: bool = True,
) -> InferenceBackend:
    """Construct the backend named ``kind`` (see the module docstring).

    ``variant=None`` accepts whatever the model file records (checkpoint config / sidecar).
    ``num_threads`` > 0 limits CPU threads (torch / ORT intra-op). ``onnx_fused_attention`` lets the
    ONNX Runtime backend run attention as its fused MultiHeadAttention op. Raises
    :class:`BackendUnavailableError` (why it cannot run here) or
    :class:`~da3_ros.backends.base.EngineMismatchError` (model file does not fit the configuration).
    """
    kind = str(kind).strip().lower()
    if kind in ("ort", "onnx"):
        kind = "onnxruntime"
    if kind in ("trt",):
        kind = "tensorrt"
    common = dict(variant=variant or None, views=int(views) if views else None,
                  height=int(height) if height else None, width=int(width) if width else None,
                  ref_view=None if ref_view in (None, "") else str(ref_view))
    if kind == "torch":
        if not model_file_path:
            raise BackendUnavailableError("torch backend needs model_file_path = a DA3 checkpoint")
        try:
            from da3_ros.backends.torch_backend import TorchBackend
        except ImportError as exc:  # torch or the model package missing
            raise BackendUnavailableError(f"torch backend: torch/model not importable ({exc})") from exc
        return TorchBackend(model_file_path, device=device, precision=precision,
                            pose_conditioned=pose_conditioned, with_rays=with_rays,
                            num_threads=num_threads, **common)
    if kind == "onnxruntime":
        if not model_file_path:
            raise BackendUnavailableError("onnxruntime backend needs model_file_path = an exported .onnx file")
        try:
            from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        except ImportError as exc:
            raise BackendUnavailableError(f"onnxruntime not importable ({exc})") from exc
        return OnnxRuntimeBackend(model_file_path, providers=providers, num_threads=num_threads,
                                  fused_attention=onnx_fused_attention, **common)
    if kind == "tensorrt":
        from da3_ros.backends.tensorrt_backend import TensorRTBackend  # imports TensorRT lazily itself

        return TensorRTBackend(engine_file_path, onnx_path=model_file_path, precision=precision,
                               force_engine_update=force_engine_update, workspace_gb=workspace_gb,
                               timing_cache_path=timing_cache_path, use_cuda_graph=use_cuda_graph,
                               device=device, **common)
    raise BackendUnavailableError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")
