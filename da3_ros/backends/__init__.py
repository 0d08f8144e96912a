"""Inference backends behind one interface (`InferenceBackend`) and one output type
(`WindowPrediction`). Importing this package imports neither torch, onnxruntime nor TensorRT."""
from da3_ros.backends.base import (
    BackendUnavailableError,
    EngineMismatchError,
    InferenceBackend,
    POSE_ENCODING_DIM,
)
from da3_ros.backends.capabilities import ModelCapabilities
from da3_ros.backends.factory import BACKEND_KINDS, create_backend
from da3_ros.backends.prediction import OUTPUT_FIELDS, WindowPrediction

__all__ = [
    "BACKEND_KINDS",
    "BackendUnavailableError",
    "EngineMismatchError",
    "InferenceBackend",
    "ModelCapabilities",
    "OUTPUT_FIELDS",
    "POSE_ENCODING_DIM",
    "WindowPrediction",
    "create_backend",
]
