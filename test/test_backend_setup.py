"""node/backend_setup.py: ``backend`` empty (the default) is chosen from the model file given; both or neither
file, or a file of no known kind, is a configuration error naming the parameters; an explicit backend is used as
given (ROS-free: the parameters are a plain mapping)."""
from __future__ import annotations

import pytest

from da3_ros.artifact.errors import BackendUnavailableError
from da3_ros.node.backend_setup import CHECKPOINT_SUFFIXES, create_backend_from_parameters, resolve_backend_kind
from da3_ros.node.parameters import DEFAULTS, SPECS, check_settings


def test_the_default_backend_is_chosen_from_the_file():
    assert DEFAULTS["backend"] == "" and SPECS["backend"].empty_ok
    assert "empty or one of onnxruntime | tensorrt | torch | oracle" in SPECS["backend"].constraints()


@pytest.mark.parametrize("model,engine,kind", [
    ("", "/models/da3s.engine", "tensorrt"),
    ("/models/da3s.onnx", "/models/da3s.engine", "tensorrt"),      # the engine is built from the ONNX when missing
    ("/models/da3s.ONNX", "", "onnxruntime"),
    ("/models/model.safetensors", "", "torch"),
    ("/models/model.pth", "", "torch"),
    ("/models/model.pt", "", "torch"),
    ("depth-anything/DA3-SMALL", "", "torch"),                      # a Hugging Face repo id
])
def test_backend_from_the_file_given(model, engine, kind):
    assert resolve_backend_kind("", model, engine) == kind


def test_a_checkpoint_directory_is_torch(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_backend_kind("", str(tmp_path), "") == "torch"
    assert resolve_backend_kind("  ", str(tmp_path), "") == "torch"   # blank = empty


@pytest.mark.parametrize("model,engine,message", [
    ("", "", "backend is empty and no model is given: set engine_file_path"),
    ("/models/model.safetensors", "/models/da3s.engine", "both engine_file_path ('/models/da3s.engine') and "
                                                         "model_file_path ('/models/model.safetensors') are set"),
    ("/models/da3s.engine", "", "looks like a TensorRT engine: give it as engine_file_path"),
    ("/models/da3s.tflite", "", "is neither an .onnx file nor a checkpoint"),
    ("/no/such/dir", "", "is neither an .onnx file nor a checkpoint"),   # a missing absolute path, not a repo id
])
def test_no_or_ambiguous_file_is_a_clear_error(model, engine, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        resolve_backend_kind("", model, engine)


def test_an_explicit_backend_is_used_as_given():
    assert resolve_backend_kind("onnxruntime", "/models/x.onnx", "/models/x.engine") == "onnxruntime"
    assert resolve_backend_kind("torch", "", "") == "torch"     # the factory then says what torch needs
    assert resolve_backend_kind("trt", "", "") == "trt"          # aliases are the factory's


def test_checkpoint_suffixes_are_the_loaders():
    from da3_ros.model.checkpoint import CHECKPOINT_SUFFIXES as LOADER_SUFFIXES

    assert CHECKPOINT_SUFFIXES == LOADER_SUFFIXES


def test_check_settings_accepts_empty_backend_and_names_a_bad_one():
    assert not [p for p in check_settings(dict(DEFAULTS)) if "backend" in p]
    problems = check_settings(dict(DEFAULTS, backend="tflite"))
    assert "backend must be empty or one of onnxruntime | tensorrt | torch | oracle, got 'tflite'" in problems
    assert not [p for p in check_settings(dict(DEFAULTS, backend="ort")) if "backend" in p]   # alias


def _parameters(**values):
    return dict(DEFAULTS, **values).__getitem__


def test_create_from_parameters_with_the_default_backend(reduced_onnx):
    """A real exported model and nothing else: ONNX Runtime runs it (the window from its sidecar)."""
    backend = create_backend_from_parameters(_parameters(model_file_path=str(reduced_onnx), num_threads=1))
    try:
        assert backend.describe()["backend"] == "onnxruntime" and backend.views == 3
    finally:
        backend.close()


def test_create_from_parameters_without_a_file_fails_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="no model is given"):
        create_backend_from_parameters(_parameters())
    # engine_file_path alone -> the TensorRT backend, which says why it cannot run (no TensorRT / no engine)
    with pytest.raises((BackendUnavailableError, FileNotFoundError), match="(?i)tensorrt|engine"):
        create_backend_from_parameters(_parameters(engine_file_path=str(tmp_path / "missing.engine")))
