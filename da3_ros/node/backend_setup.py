"""Create the inference backend from node parameters (ROS-free: takes a ``get(name)`` callable).

The window shape is the model's: ``window_size`` / ``network_height`` / ``network_width`` = 0 and
``ref_view`` / ``variant`` = "" are passed as None ("whatever the model file says": sidecar, engine
metadata, oracle spec; the torch backend's checkpoint has no fixed window and uses
``torch_backend.DEFAULT_*``). A value set explicitly must match, else the backend raises
EngineMismatchError naming the parameter. Every backend kind, the demo's ``oracle`` included, comes
from the one factory (da3_ros.backends.factory).

``backend`` empty (the default) = chosen from the file given (:func:`resolve_backend_kind`):
``engine_file_path`` set -> tensorrt (``model_file_path``, if set, is the ONNX it is built from when the
engine is missing); else ``model_file_path`` ending ``.onnx`` -> onnxruntime; a checkpoint (a directory,
``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin``, or a Hugging Face repo id ``owner/name``) -> torch. No
file, an engine given as model_file_path, a checkpoint beside an engine, or a file of no known kind is a
configuration error naming the parameters. An explicit ``backend`` is used as given.
"""
from __future__ import annotations

import os
import re
from typing import Callable, Optional

from ..backends.base import InferenceBackend
from ..backends.factory import create_backend


#: model_file_path suffixes of a DA3 checkpoint (= da3_ros.model.checkpoint.CHECKPOINT_SUFFIXES; not imported
#: from there because that module imports torch)
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve_backend_kind(backend: str, model_file_path: str, engine_file_path: str) -> str:
    """The backend kind: ``backend`` when set, else the one the files given call for (module docstring).

    Args:
        backend: the ``backend`` parameter ("" = choose from the files).
        model_file_path: the ``model_file_path`` parameter.
        engine_file_path: the ``engine_file_path`` parameter.

    Returns:
        ``backend`` as given, or ``"tensorrt"`` / ``"onnxruntime"`` / ``"torch"``.

    Raises:
        ValueError: ``backend`` is empty and the files do not name one backend (the reason names the
            parameters).
    """
    backend = str(backend).strip()
    if backend:
        return backend
    model, engine = str(model_file_path).strip(), str(engine_file_path).strip()
    suffix = os.path.splitext(model)[1].lower()
    if engine:
        if model and suffix != ".onnx":
            raise ValueError(f"backend is empty and both engine_file_path ({engine!r}) and model_file_path ({model!r}) "
                             "are set: model_file_path beside an engine must be the .onnx it is built from; give "
                             "one model file, or set backend")
        return "tensorrt"
    if not model:
        raise ValueError("backend is empty and no model is given: set engine_file_path (a TensorRT engine) or "
                         "model_file_path (an exported .onnx, or a DA3 checkpoint for torch)")
    if suffix == ".onnx":
        return "onnxruntime"
    if suffix in ENGINE_SUFFIXES:
        raise ValueError(f"model_file_path {model!r} looks like a TensorRT engine: give it as engine_file_path "
                         "(or set backend)")
    repo_id = not os.path.exists(model) and _REPO_ID.fullmatch(model)
    if suffix in CHECKPOINT_SUFFIXES or os.path.isdir(model) or repo_id:
        return "torch"
    raise ValueError(f"backend is empty and model_file_path {model!r} is neither an .onnx file nor a checkpoint "
                     f"(directory, {' / '.join(CHECKPOINT_SUFFIXES)}, or a repo id owner/name): set backend")


def _from_model(value) -> Optional[int]:
    """0 (the default) = the model's value."""
    return int(value) or None


def create_backend_from_parameters(get: Callable[[str], object]) -> InferenceBackend:
    """Build and check the backend; raises BackendUnavailableError / EngineMismatchError /
    FileNotFoundError / ValueError with the reason (the node reports it and fails configure)."""
    kind = resolve_backend_kind(str(get("backend")), str(get("model_file_path")), str(get("engine_file_path")))
    backend = create_backend(
        kind,
        model_file_path=str(get("model_file_path")),
        engine_file_path=str(get("engine_file_path")),
        variant=str(get("variant")) or None,
        views=_from_model(get("window_size")),
        height=_from_model(get("network_height")),
        width=_from_model(get("network_width")),
        device=str(get("device")),
        precision=str(get("precision")),
        ref_view=str(get("ref_view")),
        providers=list(get("onnx_providers")) or None,
        force_engine_update=bool(get("force_engine_update")),
        num_threads=int(get("num_threads")),
        onnx_fused_attention=bool(get("onnx_fused_attention")),
        workspace_gb=int(get("max_workspace_size")) / 2**30,
    )
    return backend   # a pose-conditioned model needs pose_source: tf (WindowProcessor / RobotOdometry check it)
