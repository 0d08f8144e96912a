"""Create the inference backend from node parameters (ROS-free: takes a ``get(name)`` callable).

The window shape is the model's: ``window_size`` / ``network_height`` / ``network_width`` = 0 and
``ref_view`` / ``variant`` = "" are passed as None ("whatever the model file says": sidecar, engine
metadata, oracle spec; the torch backend's checkpoint has no fixed window and uses
``torch_backend.DEFAULT_*``). A value set explicitly must match, else the backend raises
EngineMismatchError naming the parameter.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..backends.base import InferenceBackend
from ..backends.factory import create_backend


def _ref_view(value) -> Optional[str | int]:
    value = str(value).strip()
    if not value:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _from_model(value) -> Optional[int]:
    """0 (the default) = the model's value."""
    return int(value) or None


def create_backend_from_parameters(get: Callable[[str], object]) -> InferenceBackend:
    """Build and check the backend; raises BackendUnavailableError / EngineMismatchError /
    FileNotFoundError / ValueError with the reason (the node reports it and fails configure)."""
    views, height, width = (_from_model(get(n)) for n in ("window_size", "network_height", "network_width"))
    if str(get("backend")).strip().lower() == "oracle":   # demo --oracle mode only
        from ..demo.oracle_backend import OracleBackend

        return OracleBackend(str(get("model_file_path")), views=views, height=height, width=width,
                             ref_view=_ref_view(get("ref_view")))
    backend = create_backend(
        str(get("backend")),
        model_file_path=str(get("model_file_path")),
        engine_file_path=str(get("engine_file_path")),
        variant=str(get("variant")) or None,
        views=views,
        height=height,
        width=width,
        device=str(get("device")),
        precision=str(get("precision")),
        ref_view=_ref_view(get("ref_view")),
        providers=list(get("onnx_providers")) or None,
        force_engine_update=bool(get("force_engine_update")),
        num_threads=int(get("num_threads")),
        onnx_fused_attention=bool(get("onnx_fused_attention")),
        workspace_gb=int(get("max_workspace_size")) / 2**30,
    )
    if backend.pose_conditioned:
        backend.close()
        raise ValueError("the node runs pose-free windows; export the graph without --pose-conditioned")
    return backend
