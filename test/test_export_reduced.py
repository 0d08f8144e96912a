"""ONNX export of reduced DA3 architectures (same structure as the released variants, few narrow
blocks): ONNX Runtime vs PyTorch parity on every output, static graphs, pose-conditioned and ray
graphs, fixed reference views, the monocular (sky) head, and the ONNX Runtime backend's refusals."""
import numpy as np
import onnx
import pytest
import torch

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.sidecar import read_sidecar, sidecar_from_onnx
from da3_ros.backends import BackendUnavailableError, EngineMismatchError, WindowPrediction, create_backend
from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.export_wrapper import example_pose_encoding
from da3_ros.export.graph_checks import DATA_DEPENDENT_SHAPE_OPS, graph_problems
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model

H, W = 56, 84
RTOL = 1e-4

CASES = {
    "saddle3": dict(kind="multi_view", views=3),
    "pose2": dict(kind="multi_view", views=2, pose_conditioned=True),
    "rays_ref1": dict(kind="multi_view", views=3, with_rays=True, ref_view="1"),
    "first3": dict(kind="multi_view", views=3, ref_view="first"),
    "mono2": dict(kind="mono", views=2),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("reduced")
    out = {}
    for name, case in CASES.items():
        case = dict(case)
        model = reduced_model(case.pop("kind"))
        path = root / f"{name}.onnx"
        sidecar = export_model_to_onnx(model, path, height=H, width=W, verbose=False, **case)
        out[name] = (model, path, sidecar)
    return out


def _window(views, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(views, H, W, 3), dtype=np.uint8), rng


def _max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


def _pair(exported, name):
    model, path, sc = exported[name]
    ort_backend = OnnxRuntimeBackend(str(path), num_threads=2)
    torch_backend = TorchBackend(model=model, views=sc.views, height=H, width=W, ref_view=sc.ref_view,
                                 pose_conditioned=sc.pose_conditioned, with_rays=sc.with_rays)
    return ort_backend, torch_backend, sc


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_matches_pytorch_on_all_outputs(exported, name):
    ort_backend, torch_backend, sc = _pair(exported, name)
    for seed in (1, 2):
        images, rng = _window(sc.views, seed)
        pose = example_pose_encoding(sc.views, rng) if sc.pose_conditioned else None
        got = ort_backend.infer(images, pose)
        ref = torch_backend.infer(images, pose)
        assert isinstance(got, WindowPrediction)
        assert sorted(got.arrays()) == sorted(ref.arrays()) == sorted(sc.output_names)
        for key, value in ref.arrays().items():
            assert np.isfinite(got.arrays()[key]).all(), key
            assert np.std(value) > 0, key  # outputs carry signal: a parity test on constants proves nothing
            assert _max_rel(got.arrays()[key], value) <= RTOL, (name, seed, key)


@pytest.mark.parametrize("name", list(CASES))
def test_graph_is_static(exported, name):
    _, path, sc = exported[name]
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert "NonZero" not in ops
    assert not ops & DATA_DEPENDENT_SHAPE_OPS
    assert graph_problems(proto) == []
    assert proto.opset_import[0].version >= 18
    graph_in = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert graph_in["images"] == [1, sc.views, H, W, 3]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # TensorRT cannot transpose UInt8: the first op on the images must be the Cast to float
    first = [n for n in proto.graph.node if "images" in n.input]
    assert [n.op_type for n in first] == ["Cast"]


def test_outputs_and_sidecar_follow_the_contract(exported):
    expect = {
        "saddle3": ["depth", "depth_conf", "extrinsics", "intrinsics"],
        "rays_ref1": ["depth", "depth_conf", "extrinsics", "intrinsics", "ray", "ray_conf"],
        "mono2": ["depth", "sky"],
    }
    for name, names in expect.items():
        _, path, sc = exported[name]
        assert sc.output_names == names
        assert read_sidecar(path) == sc
        assert sidecar_from_onnx(path).to_dict() == {**sc.to_dict(), "extra": sidecar_from_onnx(path).extra}
    _, _, rays = exported["rays_ref1"]
    shapes = {o.name: o.shape for o in rays.outputs}
    assert shapes["ray"] == [1, 3, 4 * H // 7, 4 * W // 7, 6]
    assert shapes["ray_conf"] == [1, 3, 4 * H // 7, 4 * W // 7]
    assert shapes["extrinsics"] == [1, 3, 3, 4] and shapes["intrinsics"] == [1, 3, 3, 3]
    _, _, pose = exported["pose2"]
    assert pose.input_names == ["images", "pose_encoding"]
    assert pose.inputs[1].shape == [1, 2, 9] and pose.inputs[1].dtype == "float32"
    assert rays.ref_view == "1" and pose.pose_conditioned and not rays.pose_conditioned


def test_pose_encoding_input_is_used(exported):
    ort_backend, _, sc = _pair(exported, "pose2")
    images, rng = _window(sc.views, 5)
    pose_a = example_pose_encoding(sc.views, rng)
    pose_b = pose_a.copy()
    pose_b[1, :3] += 1.0  # move camera 1
    a = ort_backend.infer(images, pose_a)
    b = ort_backend.infer(images, pose_b)
    assert np.max(np.abs(a.depth - b.depth)) > 1e-6 * np.max(np.abs(a.depth))
    with pytest.raises(ValueError, match=r"pose-conditioned: pose_encoding \(N, 9\) is required"):
        ort_backend.infer(images)


def test_fixed_reference_view_changes_the_world_frame(exported):
    images, _ = _window(3, 7)
    first = OnnxRuntimeBackend(str(exported["first3"][1]), num_threads=2).infer(images)
    ref1 = OnnxRuntimeBackend(str(exported["rays_ref1"][1]), num_threads=2).infer(images)
    # same weights, different reference view -> different camera tokens -> different poses
    assert np.max(np.abs(first.extrinsics - ref1.extrinsics)) > 1e-3


def test_onnxruntime_backend_refuses_mismatched_configuration(exported):
    _, path, _ = exported["saddle3"]
    with pytest.raises(EngineMismatchError) as info:
        create_backend("onnxruntime", model_file_path=str(path), views=4, height=H, width=W)
    msg = str(info.value)
    assert "views: model has 3, configuration wants 4" in msg
    assert f"rebuild it: da3-export onnx --checkpoint <da3-reduced> --views 4 --height {H} --width {W}" in msg
    with pytest.raises(EngineMismatchError, match="variant: model has 'da3-reduced', configuration wants 'da3-small'"):
        create_backend("onnxruntime", model_file_path=str(path), variant="da3-small", views=3, height=H, width=W)


def test_factory_builds_a_working_onnxruntime_backend(exported):
    _, path, _ = exported["saddle3"]
    backend = create_backend("onnxruntime", model_file_path=str(path), views=3, height=H, width=W,
                             ref_view="saddle_balanced", providers=["CPUExecutionProvider"], num_threads=2)
    info = backend.describe()
    assert info["backend"] == "onnxruntime" and info["views"] == 3 and info["variant"] == "da3-reduced"
    assert info["providers"] == ["CPUExecutionProvider"]
    pred = backend.infer(_window(3, 3)[0])
    assert pred.depth.shape == (3, H, W) and pred.extrinsics.shape == (3, 3, 4)
    assert pred.depth_conf.min() >= 1.0 and pred.depth.min() > 0
    with pytest.raises(ValueError, match=r"images must have shape \(N, H, W, 3\) = \(3, 56, 84, 3\)"):
        backend.infer(np.zeros((2, H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="images must be uint8 RGB, got dtype float32"):
        backend.infer(np.zeros((3, H, W, 3), np.float32))
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(_window(3, 3)[0])


def test_unavailable_backends_fail_at_creation_with_reason(exported, tmp_path):
    _, path, _ = exported["saddle3"]
    with pytest.raises(BackendUnavailableError, match=r"providers \['CUDAExecutionProvider'\] not available here"):
        create_backend("onnxruntime", model_file_path=str(path), views=3, height=H, width=W,
                       providers=["CUDAExecutionProvider"])
    with pytest.raises(BackendUnavailableError, match="not found; export it with da3-export onnx"):
        create_backend("onnxruntime", model_file_path=str(tmp_path / "absent.onnx"), views=3, height=H, width=W)
    with pytest.raises(BackendUnavailableError, match="unknown backend 'openvino'"):
        create_backend("openvino", views=3, height=H, width=W)
    with pytest.raises(BackendUnavailableError, match="torch backend: device 'cuda' requested but CUDA is not"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        create_backend("torch", model_file_path=str(path), views=3, height=H, width=W, device="cuda")


def test_external_data_for_large_models(exported, tmp_path):
    """Weights above the threshold (2 GB by default, forced to 0 here) go to FILE.onnx.data."""
    model, mono_path, _ = exported["mono2"]
    path = tmp_path / "mono_ext.onnx"
    sc = export_model_to_onnx(model, path, views=2, height=H, width=W, verbose=False, external_data_above_bytes=0)
    data = tmp_path / "mono_ext.onnx.data"
    assert sc.extra["external_data"] == "mono_ext.onnx.data"
    assert data.stat().st_size > 5 * path.stat().st_size
    assert read_sidecar(path).output_names == ["depth", "sky"]
    images, _ = _window(2, 9)
    a = OnnxRuntimeBackend(str(path), num_threads=2).infer(images)
    b = OnnxRuntimeBackend(str(mono_path), num_threads=2).infer(images)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.sky, b.sky)


def test_sidecar_capabilities_come_from_the_model_config(tmp_path):
    """depth_unit / capabilities follow the config's ``metric_depth``, whatever the variant is called."""
    metric = export_model_to_onnx(reduced_model("metric"), tmp_path / "m.onnx", views=1, height=H, width=W,
                                  variant="robot-depth", verbose=False)
    assert metric.depth_unit == "canonical_metric" and metric.model_capabilities.metric_depth
    assert metric.model_capabilities == ModelCapabilities.from_config(reduced_model("metric").config)
    mono = export_model_to_onnx(reduced_model("mono"), tmp_path / "r.onnx", views=1, height=H, width=W,
                                variant="not-metric-mono", verbose=False)
    assert mono.depth_unit == "window_scale" and not mono.model_capabilities.metric_depth
    assert read_sidecar(tmp_path / "r.onnx").capabilities == mono.capabilities
