"""The artefact contract: what an exported model (ONNX graph, TensorRT engine) is and how it is checked.

The one module both the exporter (da3_ros.export, which writes artefacts) and the backends
(da3_ros.backends, which run them) depend on; it depends on nothing else in da3_ros and imports
neither torch, onnxruntime, TensorRT nor rclpy. One concept per module:

- :mod:`~da3_ros.artifact.sidecar`: the sidecar ``FILE.json`` (:class:`Sidecar`), its reading and
  writing, and the checks of an artefact against the configuration and the runtime;
- :mod:`~da3_ros.artifact.capabilities`: what a model predicts (:class:`ModelCapabilities`);
- :mod:`~da3_ros.artifact.errors`: :class:`BackendUnavailableError`, :class:`EngineMismatchError`;
- :mod:`~da3_ros.artifact.precision`: the compute precisions (:data:`PRECISIONS`);
- :mod:`~da3_ros.artifact.ref_view`: reference-view names and parsing;
- :mod:`~da3_ros.artifact.tensors`: the graph's input/output names (:data:`OUTPUT_NAMES`);
- :mod:`~da3_ros.artifact.network_size`: the network size that fits a camera (the official DA3 rule) and
  the crop loss of a network size on a camera.
"""
from da3_ros.artifact.capabilities import DEPTH_UNIT_CANONICAL_METRIC, DEPTH_UNIT_WINDOW_SCALE, ModelCapabilities
from da3_ros.artifact.errors import BackendUnavailableError, EngineMismatchError
from da3_ros.artifact.precision import PRECISIONS
from da3_ros.artifact.ref_view import (
    REF_VIEW_STRATEGIES,
    parse_optional_ref_view,
    parse_ref_view,
    validate_ref_view,
)
from da3_ros.artifact.sidecar import (
    EXPORTER_VERSION,
    SCHEMA_VERSION,
    Sidecar,
    TensorSpec,
    checkpoint_sha256,
    export_command,
    file_sha256,
    read_sidecar,
    sidecar_from_onnx,
    sidecar_path,
    validate_engine_runtime,
    validate_sidecar,
    write_sidecar,
)
from da3_ros.artifact.tensors import IMAGES_INPUT, OUTPUT_NAMES, POSE_ENCODING_DIM, POSE_ENCODING_INPUT

__all__ = [
    "BackendUnavailableError", "DEPTH_UNIT_CANONICAL_METRIC", "DEPTH_UNIT_WINDOW_SCALE", "EXPORTER_VERSION",
    "EngineMismatchError", "IMAGES_INPUT", "ModelCapabilities", "OUTPUT_NAMES", "POSE_ENCODING_DIM",
    "POSE_ENCODING_INPUT", "PRECISIONS", "REF_VIEW_STRATEGIES", "SCHEMA_VERSION", "Sidecar", "TensorSpec",
    "checkpoint_sha256", "export_command", "file_sha256", "parse_optional_ref_view", "parse_ref_view",
    "read_sidecar", "sidecar_from_onnx", "sidecar_path", "validate_engine_runtime", "validate_ref_view",
    "validate_sidecar", "write_sidecar",
]
