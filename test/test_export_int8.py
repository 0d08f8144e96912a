"""`--precision int8_dynamic` exports (reduced DA3): only the backbone block weights become int8
(MatMulInteger), the graph stays static, ONNX Runtime runs it with fused attention close to the fp32
PyTorch reference (but measurably not equal), and TensorRT refuses it with the fp32 export command."""
import numpy as np
import onnx
import pytest
import torch

from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.int8_quantization import backbone_matmuls
from da3_ros.export.graph_checks import graph_problems
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model
from da3_ros.export.sidecar import read_sidecar, sidecar_from_onnx
from da3_ros.export.tensorrt_build import build_engine

H, W, N = 56, 84, 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("int8")
    model = reduced_model("multi_view")
    fp32 = root / "fp32.onnx"
    int8 = root / "int8.onnx"
    export_model_to_onnx(model, fp32, views=N, height=H, width=W, verbose=False)
    export_model_to_onnx(model, int8, views=N, height=H, width=W, verbose=False, precision="int8_dynamic")
    return model, fp32, int8


def _max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


def test_only_backbone_block_weights_are_quantised(exported):
    model, fp32, int8 = exported
    blocks = len(model.backbone.pretrained.blocks)
    expected = 4 * blocks  # qkv, proj, fc1, fc2 per block
    assert len(backbone_matmuls(onnx.load(str(fp32)))) == expected
    sc = read_sidecar(int8)
    assert sc.precision == "int8_dynamic" and sidecar_from_onnx(int8).precision == "int8_dynamic"
    assert sc.extra["quantized_matmuls"] == expected
    proto = onnx.load(str(int8))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("MatMulInteger") == ops.count("DynamicQuantizeLinear") == expected
    assert ops.count("Softmax") == blocks  # attention and everything after the backbone stay fp32
    assert all("/backbone/" in n.name for n in proto.graph.node if n.op_type == "MatMulInteger")
    assert graph_problems(proto) == []
    int8_weights = sum(np.prod(t.dims) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8)
    assert int8_weights > 0.5 * sum(p.numel() for p in model.backbone.parameters())
    assert int8.stat().st_size < 0.8 * fp32.stat().st_size


def test_onnxruntime_runs_it_close_to_fp32(exported):
    model, fp32, int8 = exported
    quantised = OnnxRuntimeBackend(str(int8), num_threads=2)
    assert quantised.describe()["fused_attention"].startswith("6 of 6")
    assert quantised.describe()["precision"] == "int8_dynamic"
    plain = OnnxRuntimeBackend(str(fp32), num_threads=2)
    reference = TorchBackend(model=model, views=N, height=H, width=W, ref_view="saddle_balanced")
    for seed in (0, 1):
        images = np.random.default_rng(seed).integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
        q, f, ref = quantised.infer(images).arrays(), plain.infer(images).arrays(), reference.infer(images).arrays()
        for key, value in ref.items():
            assert np.isfinite(q[key]).all(), key
            assert _max_rel(q[key], value) <= 5e-2, (seed, key)  # reduced model, random weights: ~1e-4..1e-2
        assert _max_rel(q["depth"], ref["depth"]) > 10 * _max_rel(f["depth"], ref["depth"])  # really quantised


def test_tensorrt_refuses_an_int8_graph(exported, tmp_path):
    _, _, int8 = exported
    with pytest.raises(ValueError, match=r"has precision int8_dynamic \(ONNX Runtime only\); TensorRT builds from "
                                         "the fp32 export .*da3-export onnx --checkpoint <da3-reduced> --views 3"):
        build_engine(int8, tmp_path / "x.engine")
    assert not (tmp_path / "x.engine").exists()


def test_unknown_onnx_precision_refused(exported, tmp_path):
    model, _, _ = exported
    with pytest.raises(ValueError, match=r"ONNX precision must be one of \('fp32', 'fp16', 'int8_dynamic'\), got 'bf16'"):
        export_model_to_onnx(model, tmp_path / "x.onnx", views=N, height=H, width=W, verbose=False, precision="bf16")
