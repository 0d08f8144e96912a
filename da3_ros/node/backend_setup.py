"""Create the inference backend from node parameters (ROS-free: takes a ``get(name)`` callable)."""
from __future__ import annotations

from typing import Callable

from ..backends.base import InferenceBackend
from ..backends.factory import create_backend


def _ref_view(value: str):
    value = str(value).strip()
    return int(value) if value.lstrip("-").isdigit() else value


def create_backend_from_parameters(get: Callable[[str], object]) -> InferenceBackend:
    """Build and check the backend; raises BackendUnavailableError / EngineMismatchError /
    FileNotFoundError / ValueError with the reason (the node reports it and fails configure)."""
    if str(get("backend")).strip().lower() == "oracle":   # demo --oracle mode only
        from ..demo.oracle_backend import OracleBackend

        return OracleBackend(str(get("model_file_path")), views=int(get("window_size")),
                             height=int(get("network_height")), width=int(get("network_width")),
                             ref_view=_ref_view(get("ref_view")))
    backend = create_backend(
        str(get("backend")),
        model_file_path=str(get("model_file_path")),
        engine_file_path=str(get("engine_file_path")),
        variant=str(get("variant")) or None,
        views=int(get("window_size")),
        height=int(get("network_height")),
        width=int(get("network_width")),
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
