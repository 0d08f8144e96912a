"""ONNX Runtime attention fusion (da3_ros.export.attention_fusion): every attention block of the
exported reduced graphs becomes one com.microsoft.MultiHeadAttention, outputs stay within 1e-5 of
the unfused graph and of PyTorch, the file on disk is untouched, and anything that is not the exact
SDPA pattern is left alone."""
import hashlib

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from da3_ros.backends import create_backend
from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.attention_fusion import fuse_attention
from da3_ros.export.export_wrapper import example_pose_encoding
from da3_ros.export.graph_checks import graph_problems
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model

H, W = 56, 84
CASES = {  # name: (export options, attention blocks in the graph)
    "saddle3": (dict(kind="multi_view", views=3), 6),
    "pose2": (dict(kind="multi_view", views=2, pose_conditioned=True), 10),  # + the camera encoder's 4
    "mono2": (dict(kind="mono", views=2), 4),  # a shallower backbone
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("fusion")
    out = {}
    for name, (case, blocks) in CASES.items():
        case = dict(case)
        model = reduced_model(case.pop("kind"))
        path = root / f"{name}.onnx"
        sidecar = export_model_to_onnx(model, path, height=H, width=W, verbose=False, **case)
        out[name] = (model, path, sidecar, blocks)
    return out


def _max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name", list(CASES))
def test_every_attention_block_is_fused_and_the_graph_stays_static(exported, name):
    _, path, _, blocks = exported[name]
    proto = onnx.load(str(path))
    assert sum(n.op_type == "Softmax" for n in proto.graph.node) == blocks
    report = fuse_attention(proto)
    assert (report.fused, report.softmax_total, report.skipped) == (blocks, blocks, [])
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("MultiHeadAttention") == blocks
    assert "Softmax" not in ops  # the score matrices are gone, not just bypassed
    assert all(n.domain == "com.microsoft" for n in proto.graph.node if n.op_type == "MultiHeadAttention")
    assert graph_problems(proto) == []
    onnx.checker.check_model(proto)


@pytest.mark.parametrize("name", list(CASES))
def test_fused_graph_matches_unfused_and_pytorch(exported, name):
    model, path, sc, blocks = exported[name]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    fused = OnnxRuntimeBackend(str(path), num_threads=2)
    plain = OnnxRuntimeBackend(str(path), num_threads=2, fused_attention=False)
    reference = TorchBackend(model=model, views=sc.views, height=H, width=W, ref_view=sc.ref_view,
                             pose_conditioned=sc.pose_conditioned)
    assert fused.describe()["fused_attention"] == (
        f"{blocks} of {blocks} softmax attention blocks fused into MultiHeadAttention")
    assert plain.describe()["fused_attention"] == "off"
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(sc.views, H, W, 3), dtype=np.uint8)
    pose = example_pose_encoding(sc.views, rng) if sc.pose_conditioned else None
    a, b, ref = fused.infer(images, pose), plain.infer(images, pose), reference.infer(images, pose)
    for key, value in ref.arrays().items():
        assert np.std(value) > 0, key
        assert _max_rel(a.arrays()[key], b.arrays()[key]) <= 1e-5, (name, key)
        assert _max_rel(a.arrays()[key], value) <= 1e-4, (name, key)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # the rewrite happened in memory only


def test_factory_and_node_parameter_switch_fusion_off(exported):
    _, path, _, _ = exported["saddle3"]
    common = dict(model_file_path=str(path), views=3, height=H, width=W, num_threads=2)
    assert create_backend("onnxruntime", **common).describe()["fused_attention"].startswith("6 of 6")
    assert create_backend("onnxruntime", onnx_fused_attention=False, **common).describe()["fused_attention"] == "off"


def test_fusion_with_external_data_weights(exported, tmp_path):
    """Weights in FILE.onnx.data: the rewritten in-memory graph still finds them next to the file."""
    model, path, _, _ = exported["mono2"]
    ext = tmp_path / "mono_ext.onnx"
    export_model_to_onnx(model, ext, views=2, height=H, width=W, verbose=False, external_data_above_bytes=0)
    assert (tmp_path / "mono_ext.onnx.data").is_file()
    images = np.random.default_rng(3).integers(0, 256, size=(2, H, W, 3), dtype=np.uint8)
    fused = OnnxRuntimeBackend(str(ext), num_threads=2)
    assert fused.describe()["fused_attention"].startswith("4 of 4")
    a = fused.infer(images)
    b = OnnxRuntimeBackend(str(path), num_threads=2, fused_attention=False).infer(images)
    assert _max_rel(a.depth, b.depth) <= 1e-5 and _max_rel(a.sky, b.sky) <= 1e-5


def _softmax_graph(scale_from_one_sqrt: bool):
    """A hand-built SDPA-like graph: q, k, v (1, 2, 5, 4) -> (1, 5, 8), optionally with a scale that
    is not SDPA's symmetric sqrt split (must then be left alone)."""
    b, n, s, h = 1, 2, 5, 4
    info = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.FLOAT, [], [0.3])),
        helper.make_node("Constant", [], ["c2"], value=helper.make_tensor("c2", TensorProto.FLOAT, [], [0.25])),
        helper.make_node("Sqrt", ["c"], ["sq"]),
        helper.make_node("Sqrt", ["c" if scale_from_one_sqrt else "c2"], ["sk"]),
        helper.make_node("Mul", ["q", "sq"], ["qs"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("Mul", ["kt", "sk"], ["ks"]),
        helper.make_node("MatMul", ["qs", "ks"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("shape", TensorProto.INT64, [3],
                                                                             [b, s, n * h])),
        helper.make_node("Reshape", ["ot", "shape"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "sdpa", [info(x, [b, n, s, h]) for x in "qkv"], [info("y", [b, s, n * h])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_hand_built_sdpa_matches_and_other_scales_are_left_alone():
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    feeds = {x: rng.standard_normal((1, 2, 5, 4)).astype(np.float32) for x in "qkv"}
    plain = _softmax_graph(True)
    expected = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    q, k, v = (feeds[x].astype(np.float64) for x in "qkv")
    scores = q @ k.transpose(0, 1, 3, 2) * 0.3
    p = np.exp(scores - scores.max(-1, keepdims=True))
    manual = ((p / p.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(1, 5, 8)
    np.testing.assert_allclose(expected, manual, rtol=1e-5, atol=1e-6)

    fused = _softmax_graph(True)
    report = fuse_attention(fused)
    assert report.fused == 1
    mha = [n for n in fused.graph.node if n.op_type == "MultiHeadAttention"][0]
    attrs = {a.name: helper.get_attribute_value(a) for a in mha.attribute}
    assert attrs["num_heads"] == 2 and attrs["scale"] == pytest.approx(0.3)  # the constant, not 1/sqrt(4)
    got = ort.InferenceSession(fused.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(got, manual, rtol=1e-5, atol=1e-6)

    other = _softmax_graph(False)
    before = other.SerializeToString()
    report = fuse_attention(other)
    assert report.fused == 0 and report.softmax_total == 1
    assert "symmetric sqrt split" in report.skipped[0]
    assert other.SerializeToString() == before
