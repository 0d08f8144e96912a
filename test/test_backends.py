"""The backend interface: the one output type (`WindowPrediction`), the PyTorch backend from a real
HF-layout checkpoint (fp32/bf16), input validation, and the factory's reasons."""
import numpy as np
import pytest
import torch

from da3_ros.backends import BackendUnavailableError, WindowPrediction, create_backend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.reduced_config import reduced_model

from da3_reference import make_official_model, official_forward, save_hf_checkpoint

H, W = 56, 84


def test_window_prediction_from_batched_and_validation():
    n = 3
    outputs = {"depth": np.ones((1, n, H, W), np.float32), "depth_conf": np.full((1, n, H, W), 2, np.float32),
               "extrinsics": np.zeros((1, n, 3, 4), np.float32), "intrinsics": np.zeros((1, n, 3, 3), np.float32),
               "unknown": np.zeros(3)}
    pred = WindowPrediction.from_batched(outputs, variant="da3-small", ref_view="first", timings={"infer_s": 0.5})
    assert (pred.views, pred.height, pred.width) == (n, H, W)
    assert list(pred.arrays()) == ["depth", "depth_conf", "extrinsics", "intrinsics"]
    assert pred.sky is None and pred.ray is None and pred.timings == {"infer_s": 0.5}
    bad = dict(outputs, extrinsics=np.zeros((1, n, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"extrinsics must have shape \(3, 3, 4\), got \(3, 4, 4\)"):
        WindowPrediction.from_batched(bad, variant="x", ref_view="first")
    with pytest.raises(ValueError, match="leading batch axis of 1"):
        WindowPrediction.from_batched({"depth": np.ones((2, n, H, W), np.float32)}, variant="x", ref_view="first")
    with pytest.raises(ValueError, match="outputs have no 'depth'"):
        WindowPrediction.from_batched({"sky": np.ones((1, n, H, W), np.float32)}, variant="x", ref_view="first")
    with pytest.raises(ValueError, match="depth_conf must be float32, got float64"):
        WindowPrediction(depth=np.ones((n, H, W), np.float32), depth_conf=np.ones((n, H, W))).validate()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    official = make_official_model("da3-small", seed=1)
    return official, save_hf_checkpoint(official, tmp_path_factory.mktemp("ck") / "DA3-SMALL", "da3-small")


def test_torch_backend_from_checkpoint_matches_official(small_checkpoint):
    official, checkpoint = small_checkpoint
    backend = create_backend("torch", model_file_path=str(checkpoint), variant="da3-small", views=2, height=H,
                             width=W, device="cpu", precision="fp32", ref_view="first", num_threads=2)
    assert backend.describe()["backend"] == "torch" and backend.variant == "da3-small"
    images = np.random.default_rng(0).integers(0, 256, size=(2, H, W, 3), dtype=np.uint8)
    pred = backend.infer(images)
    x = torch.from_numpy(images)[None].float().permute(0, 1, 4, 2, 3) / 255.0
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    ref = official_forward(official, x)
    for name in ("depth", "depth_conf", "extrinsics", "intrinsics"):
        r = ref[name][0].numpy()
        assert np.max(np.abs(pred.arrays()[name] - r)) / np.max(np.abs(r)) <= 1e-4, name
    with pytest.raises(ValueError, match="checkpoint .* holds 'da3-small', configuration wants 'da3-base'|"
                                         "variant 'da3-base' was requested"):
        create_backend("torch", model_file_path=str(checkpoint), variant="da3-base", views=2, height=H, width=W)


def test_torch_backend_bf16_close_to_fp32():
    model = reduced_model("multi_view")
    images = np.random.default_rng(2).integers(0, 256, size=(3, H, W, 3), dtype=np.uint8)
    fp32 = TorchBackend(model=model, views=3, height=H, width=W, precision="fp32").infer(images)
    bf16 = TorchBackend(model=model, views=3, height=H, width=W, precision="bf16").infer(images)
    assert bf16.depth.dtype == np.float32
    rel = np.max(np.abs(bf16.depth - fp32.depth)) / np.max(np.abs(fp32.depth))
    assert 0 < rel < 5e-2
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'fp16', 'bf16'\), got 'int8'"):
        TorchBackend(model=model, views=3, height=H, width=W, precision="int8")


def test_factory_reasons():
    with pytest.raises(BackendUnavailableError, match="torch backend needs model_file_path"):
        create_backend("torch", views=2, height=H, width=W)
    with pytest.raises(BackendUnavailableError, match="onnxruntime backend needs model_file_path"):
        create_backend("onnxruntime", views=2, height=H, width=W)
    with pytest.raises(BackendUnavailableError, match="choose one of torch, onnxruntime, tensorrt"):
        create_backend("tflite", views=2, height=H, width=W)


def test_torch_backend_window_defaults_and_capabilities_from_the_config():
    """A checkpoint has no fixed window: None (the node's 0 / "") takes the documented defaults."""
    from da3_ros.backends.torch_backend import DEFAULT_HEIGHT, DEFAULT_REF_VIEW, DEFAULT_VIEWS, DEFAULT_WIDTH

    multi = TorchBackend(model=reduced_model("multi_view"))
    window = (multi.views, multi.height, multi.width, multi.ref_view)
    assert window == (DEFAULT_VIEWS, DEFAULT_HEIGHT, DEFAULT_WIDTH, DEFAULT_REF_VIEW)
    assert window == (4, 280, 504, "saddle_balanced")
    assert multi.capabilities.predicts_poses and not multi.capabilities.metric_depth
    mono = TorchBackend(model=reduced_model("mono"), height=H, width=W)
    assert (mono.views, mono.height, mono.width) == (1, H, W)   # one view: a mono model sees no other
    assert not mono.capabilities.predicts_poses and mono.capabilities.predicts_sky
    metric = TorchBackend(model=reduced_model("metric"), views=2, height=H, width=W)
    assert metric.views == 2 and metric.capabilities.metric_depth
    assert metric.describe()["capability_metric_depth"] is True


def test_factory_builds_the_oracle_from_its_spec(tmp_path):
    """The demo's oracle is one entry of the factory: window from the spec, explicit values must match."""
    from da3_ros.backends import EngineMismatchError
    from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec
    from da3_ros.synthetic.sequence import SyntheticSequence

    sequence = SyntheticSequence("room_tour", width=64, height=48, seed=0)
    frames = {i: sequence.render(i)[0] for i in range(3)}
    spec = write_oracle_spec(tmp_path / "spec.json", frames, width=64, height=48, views=3)
    backend = create_backend("oracle", model_file_path=str(spec), ref_view="")
    assert isinstance(backend, OracleBackend)
    assert (backend.views, backend.height, backend.width, backend.ref_view) == (3, 48, 64, "first")
    pred = backend.infer(np.stack([frames[i] for i in range(3)]))
    assert pred.depth.shape == (3, 48, 64) and pred.extrinsics.shape == (3, 3, 4)
    with pytest.raises(EngineMismatchError, match="window_size: oracle spec has 3, configuration wants 4"):
        create_backend("oracle", model_file_path=str(spec), views=4)
    with pytest.raises(EngineMismatchError, match="variant: oracle spec is 'oracle', configuration wants 'da3-small'"):
        create_backend("oracle", model_file_path=str(spec), variant="da3-small")
    with pytest.raises(ValueError, match="unknown ref_view 'best'"):
        create_backend("oracle", model_file_path=str(spec), ref_view="best")


def test_node_parameter_choices_are_the_factory_kinds_and_the_contract_precisions():
    """The node's ``backend`` / ``precision`` choices are exactly what the factory and the contract accept."""
    from da3_ros.artifact.precision import PRECISIONS
    from da3_ros.backends.factory import BACKEND_ALIASES, BACKEND_KINDS
    from da3_ros.node.parameters import CHOICE_ALIASES, SPECS

    assert sorted(SPECS["backend"].choices) == sorted(BACKEND_KINDS)
    assert sorted(CHOICE_ALIASES["backend"]) == sorted(BACKEND_ALIASES)
    assert sorted(SPECS["precision"].choices) == sorted(PRECISIONS)
