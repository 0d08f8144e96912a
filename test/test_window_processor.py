"""WindowProcessor with one camera (ROS-free pipeline) with the real ONNX Runtime backend on a reduced DA3 graph."""
import numpy as np
import pytest

from da3_ros.backends.factory import create_backend
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.pipeline.network_input import NetworkInputMapping
from da3_ros.synthetic.sequence import SyntheticSequence

from window_processing import process_frame


@pytest.fixture(scope="module")
def backend(reduced_onnx):
    b = create_backend("onnxruntime", model_file_path=str(reduced_onnx), views=3, height=112, width=154,
                       ref_view="first", num_threads=2)
    yield b
    b.close()


@pytest.fixture(scope="module")
def sequence():
    return SyntheticSequence(width=320, height=240)


def _camera(seq):
    return PinholeCamera(seq.width, seq.height, seq.K)


def test_network_mapping_round_trips_intrinsics_and_footprint():
    m = NetworkInputMapping(640, 480, 504, 280)     # 4:3 camera, wide network: crop rows
    assert m.resized_size == (504, 378) and m.crop_offset == (0, 49)
    cam = PinholeCamera.from_focal(640, 480, 500.0, 510.0, 320.0, 240.0)
    K_net = m.camera_to_network(cam).K
    np.testing.assert_allclose(m.network_to_camera(PinholeCamera(504, 280, K_net)).K, cam.K, atol=1e-9)
    # principal point stays at the image centre (crop is symmetric)
    assert K_net[0, 2] == pytest.approx((320.5) * 504 / 640 - 0.5)
    assert K_net[1, 2] == pytest.approx((240.5) * 378 / 480 - 0.5 - 49)
    x0, y0, w, h = m.footprint()
    assert (x0, w) == (0, 640) and abs(y0 - 62) <= 1 and abs(h - 356) <= 1
    depth = m.map_to_camera(np.full((280, 504), 2.0, np.float32))
    assert depth.shape == (480, 640)
    assert np.isnan(depth[:y0]).all() and np.isnan(depth[y0 + h:]).all()
    np.testing.assert_allclose(depth[y0:y0 + h], 2.0)


def test_processes_a_sequence_with_poses_points_and_flags(backend, sequence):
    config = ProcessorConfig(window_size=3, point_stride=4, min_depth=0.01, max_depth=1e3,
                             confidence_threshold=1.0, publish_map_points=True, map_voxel_size=0.05)
    proc = WindowProcessor(backend, config)
    cam = _camera(sequence)
    poses, keyframes = [], 0
    for i in range(6):
        f = sequence.frame(i)
        win = process_frame(proc, f.rgb, int(f.stamp * 1e9), cam)
        out = win.reference
        assert out.depth.shape == (240, 320) and out.depth.dtype == np.float32
        assert out.confidence.shape == (240, 320)
        assert out.camera_intrinsics.width == 320
        np.testing.assert_array_equal(out.camera_intrinsics.K, sequence.K)  # camera_info wins
        assert out.points.shape == (60, 80, 3)
        finite = np.isfinite(out.points).all(-1)
        assert out.valid_points == int(finite.sum())
        z = out.points[finite][:, 2]
        assert np.all((z >= 0.01) & (z <= 1e3))
        assert set(win.stage_seconds) >= {"preprocess", "inference", "alignment", "postprocess", "cloud"}
        if out.T_odom_cam is not None:
            poses.append(out.T_odom_cam)
            R = out.T_odom_cam[:3, :3]
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
        keyframes += win.keyframe
    assert len(poses) >= 1 and keyframes >= 1
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)      # first frame defines odom
    assert proc.describe()["intrinsics_source"] == "camera_info"
    assert proc.map.flush(10.0) and len(proc.map.map) > 0
    assert proc.describe()["map_keyframes_fused"] == keyframes
    proc.close()


def test_stream_events_reset_and_recover(backend, sequence):
    proc = WindowProcessor(backend, ProcessorConfig(window_size=3, point_stride=8))
    cam = _camera(sequence)
    f0, f1 = sequence.frame(0), sequence.frame(1)
    process_frame(proc, f0.rgb, int(f0.stamp * 1e9) + 10**9, cam)
    # stamp back in time: trajectory reset, first pose identity again
    win = process_frame(proc, f1.rgb, int(f1.stamp * 1e9), cam)
    assert win.reset and [e.name for e in win.events] == ["time_jump_back"]
    np.testing.assert_allclose(win.T_odom_cam, np.eye(4), atol=1e-9)
    # resolution change: window reset, camera_info of the old size is not used
    small = np.ascontiguousarray(f1.rgb[::2, ::2])
    win = process_frame(proc, small, int(f1.stamp * 1e9) + 1, cam)
    names = [e.name for e in win.events]
    assert "resolution_change" in names and "camera_info_size_mismatch" in names
    assert win.reference.depth.shape == (120, 160)
    assert proc.describe()["intrinsics_source"].startswith("model")


def test_window_size_must_match_the_engine(backend):
    with pytest.raises(ValueError, match="window_size 4 does not match the model's window of 3 views"):
        WindowProcessor(backend, ProcessorConfig(window_size=4))


def test_single_view_window_gives_depth_without_pose(tmp_path, sequence):
    from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec

    frames = {i: sequence.render(i)[0] for i in (0, 1)}
    spec = write_oracle_spec(tmp_path / "spec.json", frames, width=320, height=240)
    proc = WindowProcessor(OracleBackend(str(spec), views=1, height=240, width=320),
                           ProcessorConfig(window_size=1, point_stride=4))
    for i in (0, 1):
        win = process_frame(proc, frames[i], i, _camera(sequence))
        assert win.T_odom_cam is None and not win.keyframe
        gt = sequence.render(i)[1]
        ratio = win.reference.depth / gt
        assert np.nanstd(ratio) / np.nanmedian(ratio) < 0.2   # oracle depth = scale * truth + noise
    assert proc.describe()["depth_unit"].startswith("model units (per-frame scale")
