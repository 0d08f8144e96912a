"""Create the inference backend from node parameters (ROS-free: takes a ``get(name)`` callable).

The window shape is the model's: ``window_size`` / ``network_height`` / ``network_width`` = 0 and
``ref_view`` / ``variant`` = "" are passed as None ("whatever the model file says": sidecar, engine
metadata, oracle spec; the torch backend's checkpoint has no fixed window and uses
``torch_backend.DEFAULT_*``). A value set explicitly must match, else the backend raises
EngineMismatchError naming the parameter. Every backend kind, the demo's ``oracle`` included, comes
from the one factory (da3_ros.backends.factory).
"""
from __future__ import annotations

from typing import Callable, Optional

from ..backends.base import InferenceBackend
from ..backends.factory import create_backend


def _from_model(value) -> Optional[int]:
    """0 (the default) = the model's value."""
    return int(value) or None


def create_backend_from_parameters(get: Callable[[str], object]) -> InferenceBackend:
    """Build and check the backend; raises BackendUnavailableError / EngineMismatchError /
    FileNotFoundError / ValueError with the reason (the node reports it and fails configure)."""
    backend = create_backend(
        str(get("backend")),
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
    return backend   # a pose-conditioned model needs pose_source: tf (FrameProcessor / RobotOdometry check it)
