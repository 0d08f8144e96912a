"""TensorRT engine building and the TensorRT backend.

- Builder path: with TensorRT-RTX installed (module ``tensorrt_rtx``; it builds ahead of time
  without a GPU) or TensorRT 10, a reduced DA3 graph parses and ``build_serialized_network``
  succeeds; the engine sidecar records the runtime.
- Runtime path (deserialise + ``execute_async_v3``): needs ``import tensorrt`` and a CUDA GPU;
  skipped with the reason otherwise.
"""
import importlib.util
import json

import numpy as np
import pytest
import torch

from da3_ros.artifact.sidecar import read_sidecar
from da3_ros.backends import BackendUnavailableError, create_backend
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model
from da3_ros.export.tensorrt_build import (
    EngineBuildOptions,
    _fp32_layer,
    build_engine,
    import_tensorrt,
    parse_onnx,
)

H, W = 56, 84


def _trt_reason():
    try:
        import_tensorrt()
        return None
    except BackendUnavailableError as exc:
        return str(exc)


NO_BUILDER = _trt_reason()
needs_builder = pytest.mark.skipif(NO_BUILDER is not None, reason=f"no TensorRT builder: {NO_BUILDER}")


def _runtime_reason():
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt (TensorRT 10) not importable: the TensorRT runtime tests need it and a CUDA GPU"
    if not torch.cuda.is_available():
        return "no CUDA GPU: TensorRT engines cannot be deserialised here"
    return None


NO_RUNTIME = _runtime_reason()
needs_runtime = pytest.mark.skipif(NO_RUNTIME is not None, reason=str(NO_RUNTIME))


@pytest.fixture(scope="module")
def reduced_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("trt") / "reduced.onnx"
    model = reduced_model("multi_view")
    export_model_to_onnx(model, path, views=3, height=H, width=W, verbose=False)
    return model, path


@needs_builder
def test_reduced_graph_parses_and_builds(reduced_onnx, tmp_path):
    _, onnx_path = reduced_onnx
    trt, module_name = import_tensorrt()
    engine_path = tmp_path / "reduced.engine"
    precision = "fp32" if module_name == "tensorrt_rtx" else "fp16"
    sidecar = build_engine(onnx_path, engine_path, EngineBuildOptions(precision=precision, workspace_gb=1.0,
                                                                      timing_cache_path=str(tmp_path / "t.cache")))
    assert engine_path.stat().st_size > 100_000
    data = json.loads(engine_path.with_suffix(".json").read_text())
    assert data["artifact"] == "engine" and data["precision"] == precision and data["onnx_precision"] == "fp32"
    assert data["tensorrt_module"] == module_name and data["tensorrt_version"] == str(trt.__version__)
    assert data["views"] == 3 and data["height"] == H and data["width"] == W
    assert data["compute_capability"]  # GPU "major.minor", or the ahead-of-time target list ("SM86")
    assert len(data["onnx_sha256"]) == 64
    assert read_sidecar(engine_path) == sidecar
    assert [o["name"] for o in data["outputs"]] == ["depth", "depth_conf", "extrinsics", "intrinsics"]


@needs_builder
def test_overflow_prone_layers_are_found(reduced_onnx):
    _, onnx_path = reduced_onnx
    trt, _ = import_tensorrt()
    _, network, _parser = parse_onnx(trt, onnx_path)
    kinds = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if _fp32_layer(trt, layer):
            kinds[str(layer.type)] = kinds.get(str(layer.type), 0) + 1
    import onnx

    ops = [n.op_type for n in onnx.load(str(onnx_path)).graph.node]
    # every LayerNorm and softmax of the graph, and the exp of depth/confidence, are pinned in fp16/bf16
    assert kinds.get("LayerType.NORMALIZATION", 0) >= ops.count("LayerNormalization") > 0
    assert kinds.get("LayerType.SOFTMAX", 0) == ops.count("Softmax") > 0
    assert kinds.get("LayerType.UNARY", 0) >= ops.count("Exp") == 2


@needs_builder
def test_rtx_refuses_reduced_precision_with_reason(reduced_onnx, tmp_path):
    trt, module_name = import_tensorrt()
    if module_name != "tensorrt_rtx":
        pytest.skip("TensorRT 10 supports fp16 builder flags")
    with pytest.raises(ValueError, match="tensorrt_rtx builds strongly typed networks.*--precision fp16"):
        build_engine(reduced_onnx[1], tmp_path / "x.engine", EngineBuildOptions(precision="fp16"))


@pytest.fixture(scope="module")
def reduced_fp16_onnx(reduced_onnx, tmp_path_factory):
    path = tmp_path_factory.mktemp("trt16") / "reduced_fp16.onnx"
    export_model_to_onnx(reduced_onnx[0], path, views=3, height=H, width=W, verbose=False, precision="fp16")
    return path


@needs_builder
def test_fp16_graph_builds_an_fp16_engine(reduced_onnx, reduced_fp16_onnx, tmp_path):
    """The mixed fp16 graph is what a strongly typed (TensorRT-RTX) fp16 engine is built from; the
    builder takes the precision from the graph when none is given."""
    trt, module_name = import_tensorrt()
    engine_path = tmp_path / "reduced_fp16.engine"
    sidecar = build_engine(reduced_fp16_onnx, engine_path, EngineBuildOptions(workspace_gb=1.0))
    assert sidecar.precision == "fp16" and sidecar.onnx_precision == "fp16"
    assert engine_path.stat().st_size > 100_000
    with pytest.raises(ValueError, match=r"precision comes from the ONNX graph \(fp16 here\)|is an fp16 graph"):
        build_engine(reduced_fp16_onnx, tmp_path / "x.engine", EngineBuildOptions(precision="fp32"))
    if module_name == "tensorrt_rtx":  # asking the fp32 graph for fp16 names the fp16 export
        with pytest.raises(ValueError, match=r"use --precision fp32 or a graph exported with da3-export onnx "
                                             r"\.\.\. --precision fp16"):
            build_engine(reduced_onnx[1], tmp_path / "y.engine", EngineBuildOptions(precision="fp16"))


def test_unparseable_onnx_is_reported(tmp_path):
    if NO_BUILDER:
        pytest.skip(f"no TensorRT builder: {NO_BUILDER}")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    trt, _ = import_tensorrt()
    with pytest.raises(RuntimeError, match="TensorRT could not parse"):
        parse_onnx(trt, bad)


def test_tensorrt_backend_unavailable_here_says_why():
    if NO_RUNTIME is None:
        pytest.skip("TensorRT runtime and GPU present")
    with pytest.raises(BackendUnavailableError) as info:
        create_backend("tensorrt", engine_file_path="absent.engine", model_file_path="", views=3, height=H, width=W)
    msg = str(info.value)
    assert ("not importable" in msg) or ("needs a CUDA GPU" in msg)


@needs_runtime
def test_tensorrt_backend_matches_onnxruntime(reduced_onnx, tmp_path):
    from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    _, onnx_path = reduced_onnx
    engine = tmp_path / "reduced_fp32.engine"
    backend = create_backend("tensorrt", engine_file_path=str(engine), model_file_path=str(onnx_path),
                             precision="fp32", views=3, height=H, width=W, use_cuda_graph=True)
    images = np.random.default_rng(0).integers(0, 256, size=(3, H, W, 3), dtype=np.uint8)
    got = backend.infer(images).arrays()
    ref = OnnxRuntimeBackend(str(onnx_path)).infer(images).arrays()
    for key, value in ref.items():
        assert np.max(np.abs(got[key] - value)) / np.max(np.abs(value)) < 1e-3, key
    assert backend.describe()["cuda_graph"] is True
    with pytest.raises(Exception, match="views: model has 3, configuration wants 4"):
        create_backend("tensorrt", engine_file_path=str(engine), views=4, height=H, width=W)


@needs_builder
def test_engine_dtypes_map_to_torch_buffers():
    from da3_ros.backends import EngineMismatchError
    from da3_ros.backends.tensorrt_backend import _torch_dtype

    trt, _ = import_tensorrt()
    assert _torch_dtype(trt, trt.uint8) == torch.uint8
    assert _torch_dtype(trt, trt.float32) == torch.float32
    assert _torch_dtype(trt, trt.float16) == torch.float16
    assert _torch_dtype(trt, trt.bfloat16) == torch.bfloat16
    with pytest.raises(EngineMismatchError, match="not supported by this backend"):
        _torch_dtype(trt, trt.int8)
