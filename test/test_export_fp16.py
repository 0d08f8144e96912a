"""`--precision fp16` exports (reduced DA3): a mixed-precision graph whose weights and matmuls are
float16 while LayerNorm, softmax, exp and reductions stay float32; the I/O contract is unchanged
and the outputs stay within fp16 accuracy of the fp32 PyTorch reference (run here with ONNX
Runtime's CPU kernels; TensorRT-RTX builds it in test_tensorrt_build.py)."""
import numpy as np
import onnx
import pytest
import torch

from da3_ros.artifact.sidecar import read_sidecar
from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.fp16_conversion import FP32_OPS, is_fp16_region
from da3_ros.export.export_wrapper import example_pose_encoding
from da3_ros.export.graph_checks import graph_problems
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model

H, W = 56, 84
CASES = {"first3": dict(views=3, ref_view="first"), "pose2": dict(views=2, pose_conditioned=True)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("fp16")
    model = reduced_model("multi_view")
    out = {}
    for name, case in CASES.items():
        fp32, fp16 = root / f"{name}_fp32.onnx", root / f"{name}_fp16.onnx"
        export_model_to_onnx(model, fp32, height=H, width=W, verbose=False, **case)
        export_model_to_onnx(model, fp16, height=H, width=W, verbose=False, precision="fp16", **case)
        out[name] = (fp32, fp16)
    return model, out


def _max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


def _elem_types(proto):
    types = {}
    for info in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        types[info.name] = info.type.tensor_type.elem_type
    for init in proto.graph.initializer:
        types[init.name] = init.data_type
    return types


def test_weights_are_fp16_and_sensitive_ops_fp32(exported):
    _, graphs = exported
    fp32, fp16 = graphs["first3"]
    assert read_sidecar(fp16).precision == "fp16"
    assert read_sidecar(fp16).inputs == read_sidecar(fp32).inputs
    assert read_sidecar(fp16).outputs == read_sidecar(fp32).outputs
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(fp16)))
    assert graph_problems(proto) == []
    types = _elem_types(proto)
    readers = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node.name)
    big = [t for t in proto.graph.initializer if np.prod(t.dims) >= 1024]
    heavy = [t for t in big if all(is_fp16_region(r) for r in readers.get(t.name, []))]  # backbone, depth head
    light = [t for t in big if t not in heavy]  # the camera decoder
    assert len(heavy) > 0.8 * len(big) and light
    assert all(t.data_type == onnx.TensorProto.FLOAT16 for t in heavy)
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in light)
    assert fp16.stat().st_size < 0.7 * fp32.stat().st_size  # weights halve; the graph itself does not
    kept = [n for n in proto.graph.node if n.op_type in ("LayerNormalization", "Softmax", "Exp")]
    assert len(kept) > 10
    for node in kept:
        assert node.op_type in FP32_OPS
        assert types[node.input[0]] == onnx.TensorProto.FLOAT, (node.name, types[node.input[0]])
    matmuls = [n for n in proto.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in
               {t.name for t in heavy}]
    assert matmuls and all(types[n.output[0]] == onnx.TensorProto.FLOAT16 for n in matmuls)
    assert [i.type.tensor_type.elem_type for i in proto.graph.input] == [onnx.TensorProto.UINT8]
    # no fp32 value makes a round trip through fp16 between two fp32 nodes
    producer = {o: n for n in proto.graph.node for o in n.output}
    to = lambda n: next((a.i for a in n.attribute if a.name == "to"), None)  # noqa: E731
    for node in proto.graph.node:
        if node.op_type == "Cast" and to(node) == onnx.TensorProto.FLOAT and node.input[0] in producer:
            first = producer[node.input[0]]
            if first.op_type == "Cast" and to(first) == onnx.TensorProto.FLOAT16:
                assert types.get(first.input[0]) != onnx.TensorProto.FLOAT, node.name
    # the camera decoder and the pose -> extrinsics/intrinsics tail stay fp32
    cam = [n for n in proto.graph.node if "/cam_dec/" in n.name and n.op_type in ("MatMul", "Gemm", "Add")]
    assert cam and all(types[n.output[0]] == onnx.TensorProto.FLOAT for n in cam)
    assert {o.type.tensor_type.elem_type for o in proto.graph.output} == {onnx.TensorProto.FLOAT}


@pytest.mark.parametrize("name", list(CASES))
def test_fp16_graph_matches_pytorch_within_fp16_accuracy(exported, name):
    model, graphs = exported
    fp32, fp16 = graphs[name]
    sc = read_sidecar(fp16)
    half = OnnxRuntimeBackend(str(fp16), num_threads=2)
    full = OnnxRuntimeBackend(str(fp32), num_threads=2)
    reference = TorchBackend(model=model, views=sc.views, height=H, width=W, ref_view=sc.ref_view,
                             pose_conditioned=sc.pose_conditioned)
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(sc.views, H, W, 3), dtype=np.uint8)
    pose = example_pose_encoding(sc.views, rng) if sc.pose_conditioned else None
    h, f = half.infer(images, pose).arrays(), full.infer(images, pose).arrays()
    ref = reference.infer(images, pose).arrays()
    for key, value in ref.items():
        assert np.isfinite(h[key]).all(), key
        assert _max_rel(h[key], value) <= 1e-2, (name, key, _max_rel(h[key], value))
    assert _max_rel(h["depth"], ref["depth"]) > 10 * _max_rel(f["depth"], ref["depth"])  # really fp16
