"""One camera model through the pipeline: the model's DA3-convention K and the equivalent camera_info
give the same point cloud; the depth-only fallback camera; network maps back to the camera grid."""
from __future__ import annotations

import numpy as np
import pytest
from da3_official_preprocessing import da3_network_intrinsics
from window_processing import process_frame

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.pipeline.network_input import NetworkInputMapping
from da3_ros.pipeline.point_cloud import OrganizedCloudBuilder
from da3_ros.synthetic.sequence import SyntheticSequence


@pytest.fixture(scope="module")
def sequence():
    return SyntheticSequence(width=320, height=240)


def test_cloud_from_the_models_K_equals_the_cloud_from_camera_info(tmp_path, sequence):
    # the oracle backend returns the true camera as the model does (DA3 convention, cx = W/2 for a
    # centred camera); the pipeline converts it once, so without camera_info it must build the cloud
    # that camera_info (pixel-centre convention, cx = (W-1)/2) gives
    from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec

    frames = {i: sequence.render(i)[0] for i in (0, 1)}
    spec = write_oracle_spec(tmp_path / "spec.json", frames, width=320, height=240)
    camera_info = PinholeCamera(sequence.width, sequence.height, sequence.K)
    assert (camera_info.cx, camera_info.cy) == (159.5, 119.5)
    outputs = {}
    for name, camera in (("camera_info", camera_info), ("model", None)):
        backend = OracleBackend(str(spec), views=1, height=240, width=320)
        assert backend.infer(frames[0][None]).intrinsics[0, 0, 2] == 160.0   # the model's convention
        proc = WindowProcessor(backend, ProcessorConfig(window_size=1, point_stride=1, confidence_threshold=0.0))
        outputs[name] = [process_frame(proc, frames[i], i, camera).reference for i in (0, 1)]
        assert proc.describe()["intrinsics_source"].startswith(name)
    for with_info, from_model in zip(outputs["camera_info"], outputs["model"]):
        np.testing.assert_array_equal(with_info.depth, from_model.depth)
        # K passes through float32 (relative 6e-8) on the model path; |X| <= 10 m -> < 1e-6
        np.testing.assert_allclose(from_model.camera_intrinsics.K, camera_info.K, rtol=0, atol=1e-4)
        finite = np.isfinite(with_info.points)
        assert finite.any() and np.array_equal(finite, np.isfinite(from_model.points))
        np.testing.assert_allclose(from_model.points[finite], with_info.points[finite], rtol=0, atol=1e-6)


def test_cloud_from_network_K_equals_camera_info_through_a_cropping_mapping():
    # a 4:3 camera on a wide network: resize + row crop. The model's K for the network input, written
    # in DA3's corner convention by DA3's own rule (scale rows, shift by the crop), taken back through
    # the pipeline's path (from_da3_intrinsics -> network_to_camera) builds camera_info's cloud
    m = NetworkInputMapping(640, 480, 154, 112)
    info = PinholeCamera.from_focal(640, 480, 525.0, 526.0, 319.5, 239.5)
    K_da3 = da3_network_intrinsics(info, m)
    model_camera = m.network_to_camera(PinholeCamera.from_da3_intrinsics(K_da3.astype(np.float32), 154, 112))
    depth = (1.0 + np.random.default_rng(3).random((480, 640)) * 9.0).astype(np.float32)
    builder = OrganizedCloudBuilder(stride=1)
    xyz_info, _, n_info = builder.build(depth, info)
    xyz_model, _, n_model = builder.build(depth, model_camera)
    assert n_info == n_model == 640 * 480
    # float32 K (relative 6e-8) and float32 rays, |X| <= 10 m -> < 1e-6
    np.testing.assert_allclose(xyz_model, xyz_info, rtol=0, atol=1e-6)
    # without the half-pixel conversion the clouds differ by ~0.5 px / 525 px * 10 m ~ 1e-2
    wrong = m.network_to_camera(PinholeCamera(154, 112, K_da3))
    assert np.abs(builder.build(depth, wrong)[0] - xyz_info).max() > 1e-3


def test_depth_only_fallback_camera_is_centred(tmp_path):
    # a mono model predicts no intrinsics; without camera_info the published camera is the documented
    # 60 degree guess with the principal point at the image centre in camera_info's convention
    from model_fixtures import export_reduced_onnx

    from da3_ros.backends.factory import create_backend

    path = export_reduced_onnx(tmp_path, views=1, height=112, width=154, kind="mono")
    backend = create_backend("onnxruntime", model_file_path=str(path), views=1, height=112, width=154,
                             ref_view="first", num_threads=2)
    try:
        proc = WindowProcessor(backend, ProcessorConfig(window_size=1, point_stride=1))
        rgb = np.random.default_rng(0).integers(0, 256, (224, 308, 3), dtype=np.uint8)  # 2x the network
        out = process_frame(proc, rgb, 0, None).reference
    finally:
        backend.close()
    cam = out.camera_intrinsics
    f_net = 154 / 2 / np.tan(np.radians(30.0))
    assert cam.size == (308, 224)
    assert (cam.cx, cam.cy) == pytest.approx((307 / 2, 223 / 2), abs=1e-9)
    assert (cam.fx, cam.fy) == pytest.approx((2 * f_net, 2 * f_net), rel=1e-12)
    rays = cam.ray_grid(dtype=np.float64)
    np.testing.assert_allclose(rays[111:113, 153:155, :2].mean(axis=(0, 1)), 0.0, atol=1e-12)


def test_network_maps_back_to_the_camera_grid():
    # (from the removed preprocessing tests) a map linear in network x is linear in camera x after
    # mapping back, and the cropped-away rows are NaN
    m = NetworkInputMapping(1920, 1080, 504, 280)
    assert m.resized_size == (504, 284) and m.crop_offset == (0, 2)
    net = np.broadcast_to(np.arange(504, dtype=np.float32), (280, 504))
    cam = m.map_to_camera(net)
    assert cam.shape == (1080, 1920)
    x0, y0, w, h = m.footprint()
    # network x of each camera column: u_net = (u + 0.5) * 504 / 1920 - 0.5 (cv2 pixel-edge convention)
    expect = (np.arange(1920) + 0.5) * 504 / 1920 - 0.5
    inner = slice(4, -4)  # bilinear is exact away from the clamped border; float32 map values < 504
    np.testing.assert_allclose(cam[540, inner], expect[inner], rtol=0, atol=1e-4)
    assert np.isnan(cam[:y0]).all() and np.isnan(cam[y0 + h:]).all() and y0 > 0
    assert np.isfinite(cam[y0:y0 + h]).all()
    # rows across the crop: network y of camera row v is (v + 0.5) * 284 / 1080 - 0.5 - 2 exactly (the
    # geometry of network_to_camera), not a rounded footprint; the covered rows are those whose centre
    # lies inside the crop's pixel edges
    net_y = np.broadcast_to(np.arange(280, dtype=np.float32)[:, None], (280, 504))
    cam_y = m.map_to_camera(net_y)
    expect_y = (np.arange(1080) + 0.5) * 284 / 1080 - 0.5 - 2
    covered = (expect_y >= -0.5) & (expect_y <= 279.5)
    assert (y0, h) == (int(np.argmax(covered)), int(covered.sum()))
    rows = np.flatnonzero(covered)
    np.testing.assert_allclose(cam_y[rows, 960], np.clip(expect_y[rows], 0, 279), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="map is"):
        m.map_to_camera(net[:, :500])
