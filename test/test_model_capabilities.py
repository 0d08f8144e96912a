"""Model capabilities (poses / metric depth / sky / confidence) come from the model config and the
sidecar, and the published depth unit is true for every kind of model (real ONNX Runtime on reduced
graphs of the da3-small, da3metric-large and da3mono-large architectures)."""
import numpy as np
import pytest

from da3_ros.backends import ModelCapabilities, create_backend
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.export.reduced_config import reduced_config
from da3_ros.model.config import VARIANTS
from da3_ros.pipeline.depth_unit import (
    DEPTH_UNIT_CANONICAL_METRIC,
    DEPTH_UNIT_METRES,
    DEPTH_UNIT_ODOMETRY,
    DEPTH_UNIT_RELATIVE,
    METRIC_CANONICAL_FOCAL,
)
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.synthetic.sequence import SyntheticSequence

from model_fixtures import export_reduced_onnx
from window_processing import process_frame


def test_capabilities_of_every_released_variant_from_its_config():
    caps = {name: ModelCapabilities.from_config(cfg) for name, cfg in VARIANTS.items()}
    for name in ("da3-small", "da3-base", "da3-large", "da3-giant"):
        assert caps[name] == ModelCapabilities(predicts_poses=True, metric_depth=False, predicts_sky=False,
                                               predicts_confidence=True), name
    assert caps["da3metric-large"] == ModelCapabilities(predicts_poses=False, metric_depth=True, predicts_sky=True,
                                                        predicts_confidence=False)
    assert caps["da3mono-large"] == ModelCapabilities(predicts_poses=False, metric_depth=False, predicts_sky=True,
                                                      predicts_confidence=False)
    # the nested model's ``depth`` is the any-view network's (window scale), sky from its metric network
    assert caps["da3nested-giant-large"] == ModelCapabilities(predicts_poses=True, metric_depth=False,
                                                              predicts_sky=True, predicts_confidence=True)
    # reduced test architectures keep their variant's capabilities (names do not matter)
    assert ModelCapabilities.from_config(reduced_config("metric")) == caps["da3metric-large"]
    assert ModelCapabilities.from_config(reduced_config("mono")) == caps["da3mono-large"]
    assert ModelCapabilities.from_config(reduced_config("multi_view")) == caps["da3-small"]


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("caps")
    return {"multi_view": export_reduced_onnx(out, views=2, height=56, width=84),
            "mono": export_reduced_onnx(out, views=1, height=56, width=84, kind="mono"),
            "metric": export_reduced_onnx(out, views=1, height=56, width=84, kind="metric")}


@pytest.fixture(scope="module")
def sequence():
    return SyntheticSequence(width=120, height=80)


def _processor(path):
    backend = create_backend("onnxruntime", model_file_path=str(path), num_threads=1)  # window from the sidecar
    return WindowProcessor(backend, ProcessorConfig(point_stride=4))


def test_unit_string_of_each_model_kind_with_and_without_camera_info(onnx_models, sequence):
    camera = PinholeCamera(sequence.width, sequence.height, sequence.K)
    frame = sequence.frame(0)
    stamp = int(frame.stamp * 1e9)

    pose_model = _processor(onnx_models["multi_view"])
    assert pose_model.backend.capabilities.predicts_poses and pose_model.tracking
    first = process_frame(pose_model, frame.rgb, stamp, camera)
    assert pose_model.depth_unit == DEPTH_UNIT_ODOMETRY
    np.testing.assert_allclose(first.T_odom_cam, np.eye(4), atol=1e-6)   # the first frame defines odom
    process_frame(pose_model, sequence.frame(1).rgb, stamp + 100_000_000, None)   # random weights: may be rejected
    assert pose_model.depth_unit == DEPTH_UNIT_ODOMETRY                   # the unit is odometry units either way
    stamp += 200_000_000

    mono = _processor(onnx_models["mono"])
    caps = mono.backend.capabilities
    assert (caps.predicts_poses, caps.metric_depth, caps.predicts_sky) == (False, False, True)
    with_cam = process_frame(mono, frame.rgb, stamp, camera)
    assert mono.depth_unit == DEPTH_UNIT_RELATIVE and with_cam.T_odom_cam is None
    without_cam = process_frame(mono, frame.rgb, stamp + 1, None)
    assert mono.depth_unit == DEPTH_UNIT_RELATIVE
    # relative depth is never rescaled by a focal length (same image -> same numbers; ORT is deterministic)
    np.testing.assert_array_equal(with_cam.reference.depth, without_cam.reference.depth)

    metric = _processor(onnx_models["metric"])
    assert metric.backend.capabilities.metric_depth and not metric.tracking
    raw = process_frame(metric, frame.rgb, stamp, None).reference
    assert metric.depth_unit == DEPTH_UNIT_CANONICAL_METRIC and "not metres" in metric.depth_unit
    metres = process_frame(metric, frame.rgb, stamp + 1, camera).reference
    assert metric.depth_unit == DEPTH_UNIT_METRES == "m"
    assert metric.describe()["depth_unit"] == "m"
    # metres = canonical * f_net / 300, f_net = the camera focal length at network resolution
    mapping = metric.streams[0].mapping
    K_net = mapping.camera_to_network(camera).K
    factor = 0.5 * (K_net[0, 0] + K_net[1, 1]) / METRIC_CANONICAL_FOCAL
    finite = np.isfinite(raw.depth)
    assert finite.any()
    # float32 product of the same inputs: a few ulp
    np.testing.assert_allclose(metres.depth[finite], raw.depth[finite] * factor, rtol=1e-6)
    assert abs(factor - 1.0) > 0.05   # the check above would not notice a missing conversion otherwise
    # back to no camera_info: no longer metres
    process_frame(metric, frame.rgb, stamp + 2, None)
    assert metric.depth_unit == DEPTH_UNIT_CANONICAL_METRIC
