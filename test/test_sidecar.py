"""Sidecar schema: round trips (JSON file and ONNX metadata_props), checksums, and refusal of
models/engines that do not match the configuration or the running TensorRT/GPU."""
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from da3_ros.artifact.errors import EngineMismatchError
from da3_ros.artifact.ref_view import parse_ref_view
from da3_ros.artifact.sidecar import (
    EXPORTER_VERSION,
    Sidecar,
    TensorSpec,
    checkpoint_sha256,
    read_sidecar,
    sidecar_path,
    validate_engine_runtime,
    validate_sidecar,
    write_sidecar,
)


def make_sidecar(**overrides) -> Sidecar:
    base = Sidecar(
        variant="da3-small", views=2, height=280, width=504, ref_view="saddle_balanced",
        inputs=[TensorSpec("images", "uint8", [1, 2, 280, 504, 3])],
        outputs=[TensorSpec("depth", "float32", [1, 2, 280, 504]),
                 TensorSpec("depth_conf", "float32", [1, 2, 280, 504]),
                 TensorSpec("extrinsics", "float32", [1, 2, 3, 4]),
                 TensorSpec("intrinsics", "float32", [1, 2, 3, 3])],
        checkpoint_sha256="ab" * 32, opset=18, extra={"op_histogram": {"MatMul": 78}})
    return dataclasses.replace(base, **overrides)


def test_json_round_trip(tmp_path):
    sc = make_sidecar()
    path = write_sidecar(sc, tmp_path / "model.onnx")
    assert path == tmp_path / "model.json" == sidecar_path(tmp_path / "model.onnx")
    assert sidecar_path(tmp_path / "model.engine") == tmp_path / "model.json"
    data = json.loads(path.read_text())
    for key in ("variant", "views", "height", "width", "ref_view", "inputs", "outputs", "precision",
                "checkpoint_sha256", "exporter_version"):
        assert key in data, key
    assert data["inputs"][0] == {"name": "images", "dtype": "uint8", "shape": [1, 2, 280, 504, 3]}
    assert data["exporter_version"] == EXPORTER_VERSION
    back = read_sidecar(tmp_path / "model.onnx")
    assert back == sc
    assert back.input_names == ["images"]
    assert back.output_names == ["depth", "depth_conf", "extrinsics", "intrinsics"]


def test_metadata_props_round_trip():
    sc = make_sidecar(ref_view="2", pose_conditioned=True)
    props = sc.to_metadata_props()
    assert all(isinstance(v, str) for v in props.values())
    assert json.loads(props["da3.views"]) == 2
    assert Sidecar.from_metadata_props(props) == sc


def test_missing_and_broken_sidecar_refused(tmp_path):
    with pytest.raises(EngineMismatchError, match="no sidecar .*re-export with da3-export"):
        read_sidecar(tmp_path / "nothing.engine")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EngineMismatchError, match="not valid JSON"):
        read_sidecar(tmp_path / "bad.onnx")
    (tmp_path / "partial.json").write_text(json.dumps({"variant": "da3-small", "views": 2}))
    with pytest.raises(EngineMismatchError, match=r"lacks required fields \['height', 'width'"):
        read_sidecar(tmp_path / "partial.onnx")


def test_checkpoint_sha256_of_file_and_directory(tmp_path):
    payload = np.arange(1000, dtype=np.float32).tobytes()
    (tmp_path / "model.safetensors").write_bytes(payload)
    (tmp_path / "config.json").write_text('{"model_name": "da3-small"}')
    expected = hashlib.sha256(payload).hexdigest()
    assert checkpoint_sha256(tmp_path / "model.safetensors") == expected
    assert checkpoint_sha256(tmp_path) == expected
    assert checkpoint_sha256(tmp_path / "absent") == ""


def test_matching_configuration_accepted():
    sc = make_sidecar()
    validate_sidecar(sc, model_path="m.onnx", variant="da3-small", views=2, height=280, width=504,
                     ref_view="saddle_balanced")
    validate_sidecar(sc, model_path="m.onnx")  # None = accept the sidecar's values


@pytest.mark.parametrize("field,value,expected", [
    ("views", 4, r"views: model has 2, configuration wants 4"),
    ("height", 504, r"height: model has 280, configuration wants 504"),
    ("variant", "da3-base", r"variant: model has 'da3-small', configuration wants 'da3-base'"),
    ("ref_view", "first", r"ref_view: model has 'saddle_balanced', configuration wants 'first'"),
])
def test_mismatched_configuration_refused_with_rebuild_command(field, value, expected):
    sc = make_sidecar()
    kwargs = dict(variant="da3-small", views=2, height=280, width=504, ref_view="saddle_balanced")
    kwargs[field] = value
    with pytest.raises(EngineMismatchError, match=expected) as info:
        validate_sidecar(sc, model_path="m.onnx", **kwargs)
    message = str(info.value)
    assert "ONNX model m.onnx does not match the configuration" in message
    wanted = {**kwargs}
    assert (f"rebuild it: da3-export onnx --checkpoint <{wanted['variant']}> --views {wanted['views']} "
            f"--height {wanted['height']} --width {wanted['width']} --ref-view {wanted['ref_view']}") in message


def test_mismatched_engine_also_says_to_rebuild_the_engine():
    sc = make_sidecar(artifact="engine", precision="fp16")
    with pytest.raises(EngineMismatchError, match=r"engine m.engine does not match.*da3-export engine") as info:
        validate_sidecar(sc, model_path="m.engine", views=3)
    assert "--views 3" in str(info.value)


def _engine_sidecar(**overrides):
    fields = dict(artifact="engine", precision="fp16", tensorrt_module="tensorrt", tensorrt_version="10.9.0",
                  gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    return make_sidecar(**{**fields, **overrides})


def test_engine_runtime_match_and_mismatch():
    sc = _engine_sidecar()
    validate_engine_runtime(sc, engine_path="m.engine", tensorrt_version="10.9.0", tensorrt_module="tensorrt",
                            gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    with pytest.raises(EngineMismatchError) as info:
        validate_engine_runtime(sc, engine_path="m.engine", tensorrt_version="10.13.0",
                                tensorrt_module="tensorrt", gpu_name="NVIDIA GeForce RTX 4090",
                                compute_capability="8.9")
    msg = str(info.value)
    assert "tensorrt_version: engine built with '10.9.0', running '10.13.0'" in msg
    assert "gpu_name: engine built for 'NVIDIA H100 80GB HBM3', running on 'NVIDIA GeForce RTX 4090'" in msg
    assert "compute_capability: engine built for '9.0', running on '8.9'" in msg
    assert "rebuild it on this machine: da3-export engine --onnx FILE.onnx --precision fp16" in msg


def test_ahead_of_time_engine_checks_compute_capability_list():
    sc = _engine_sidecar(gpu_name="", compute_capability="SM86,SM89", tensorrt_module="tensorrt_rtx",
                         tensorrt_version="1.7.1.116")
    validate_engine_runtime(sc, engine_path="a.engine", tensorrt_version="1.7.1.116",
                            tensorrt_module="tensorrt_rtx", gpu_name="NVIDIA GeForce RTX 4090",
                            compute_capability="8.9")
    with pytest.raises(EngineMismatchError, match=r"engine built for \['SM86', 'SM89'\], running on '12.0'"):
        validate_engine_runtime(sc, engine_path="a.engine", tensorrt_version="1.7.1.116",
                                tensorrt_module="tensorrt_rtx", gpu_name="RTX 5090", compute_capability="12.0")
    expected = r"tensorrt_module: engine built with 'tensorrt_rtx', running 'tensorrt'"
    with pytest.raises(EngineMismatchError, match=expected):
        validate_engine_runtime(sc, engine_path="a.engine", tensorrt_version="1.7.1.116",
                                tensorrt_module="tensorrt", gpu_name="x", compute_capability="8.6")


def test_onnx_sidecar_is_not_an_engine():
    with pytest.raises(EngineMismatchError, match="describes a 'onnx', not a TensorRT engine"):
        validate_engine_runtime(make_sidecar(), engine_path="m.engine", tensorrt_version="",
                                tensorrt_module="", gpu_name="", compute_capability="")


def test_parse_ref_view():
    assert parse_ref_view("saddle_balanced") == "saddle_balanced"
    assert parse_ref_view("2") == 2
    assert parse_ref_view("-1") == -1
    assert parse_ref_view(3) == 3
    with pytest.raises(ValueError, match="unknown ref_view 'best'"):
        parse_ref_view("best")


def test_capabilities_recorded_and_old_sidecars_still_load(tmp_path):
    from da3_ros.artifact.capabilities import ModelCapabilities

    sc = make_sidecar()
    # derived from the outputs when an exporter does not record them, and written into the JSON
    assert sc.model_capabilities == ModelCapabilities(predicts_poses=True, metric_depth=False, predicts_sky=False,
                                                      predicts_confidence=True)
    path = write_sidecar(sc, tmp_path / "model.onnx")
    assert json.loads(path.read_text())["capabilities"] == sc.model_capabilities.to_dict()
    # a metric mono export recorded as such is read back as such (not from the variant name)
    metric_outputs = [TensorSpec("depth", "float32", [1, 1, 280, 504]), TensorSpec("sky", "float32", [1, 1, 280, 504])]
    metric = make_sidecar(variant="anything", outputs=metric_outputs,
                          capabilities=ModelCapabilities(False, True, True, False).to_dict())
    write_sidecar(metric, tmp_path / "metric.onnx")
    assert read_sidecar(tmp_path / "metric.onnx").model_capabilities == ModelCapabilities(False, True, True, False)
    # a sidecar written before 'capabilities' existed: from its output names and depth_unit
    old = json.loads(path.read_text())
    del old["capabilities"]
    old.update(outputs=[{"name": "depth", "dtype": "float32", "shape": [1, 1, 280, 504]},
                        {"name": "sky", "dtype": "float32", "shape": [1, 1, 280, 504]}],
               depth_unit="canonical_metric", variant="da3metric-large")
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_sidecar(tmp_path / "old.onnx").model_capabilities == ModelCapabilities(
        predicts_poses=False, metric_depth=True, predicts_sky=True, predicts_confidence=False)
    old["depth_unit"] = "window_scale"   # da3mono-large's
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert not read_sidecar(tmp_path / "old.onnx").model_capabilities.metric_depth
    broken = dict(old, capabilities={"predicts_poses": True})
    (tmp_path / "old.json").write_text(json.dumps(broken))
    with pytest.raises(EngineMismatchError, match=r"capabilities are incomplete"):
        read_sidecar(tmp_path / "old.onnx").model_capabilities


def test_mismatch_names_the_node_parameter():
    sc = make_sidecar()
    with pytest.raises(EngineMismatchError) as info:
        validate_sidecar(sc, model_path="m.onnx", views=3, height=112, width=504, ref_view="first")
    message = str(info.value)
    assert "views: model has 2, configuration wants 3 (parameter window_size; 0 = the model's)" in message
    assert "height: model has 280, configuration wants 112 (parameter network_height; 0 = the model's)" in message
    assert "ref_view: model has 'saddle_balanced', configuration wants 'first' (parameter ref_view" in message
    assert "width:" not in message   # equal values are not differences
    validate_sidecar(sc, model_path="m.onnx")   # nothing set: whatever the model says
