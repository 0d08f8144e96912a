"""Inference backends behind one interface (`InferenceBackend`) and one output type
(`WindowPrediction`). Importing this package imports neither torch, onnxruntime nor TensorRT.

The errors, ``ModelCapabilities``, ``OUTPUT_NAMES`` and ``POSE_ENCODING_DIM`` are the artefact
contract's (da3_ros.artifact), re-exported here because every backend user needs them."""
from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.errors import BackendUnavailableError, EngineMismatchError
from da3_ros.artifact.tensors import OUTPUT_NAMES, POSE_ENCODING_DIM
from da3_ros.backends.base import InferenceBackend
from da3_ros.backends.factory import BACKEND_KINDS, create_backend
from da3_ros.backends.prediction import WindowPrediction

__all__ = [
    "BACKEND_KINDS",
    "BackendUnavailableError",
    "EngineMismatchError",
    "InferenceBackend",
    "ModelCapabilities",
    "OUTPUT_NAMES",
    "POSE_ENCODING_DIM",
    "WindowPrediction",
    "create_backend",
]
