"""Synthetic world: exact ray-cast depth, determinism, texture, camera paths, speed, window oracle."""
import time

import numpy as np
import pytest

from da3_ros.geometry.transforms import extrinsics_to_T_world_cam, invert_transform, rotation_angle_deg
from da3_ros.synthetic.camera_paths import camera_path, look_pose
from da3_ros.synthetic.renderer import Renderer, pinhole_intrinsics
from da3_ros.synthetic.room_scene import AxisAlignedBox, RoomScene
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle

ROOM = AxisAlignedBox((-4.0, -3.0, 0.0), (4.0, 3.0, 3.0))
ZERO = OracleNoise(depth_noise=0, depth_warp=0, rotation_noise_deg=0, translation_noise=0, low_conf_blobs=0)


def test_depth_is_exact_z_distance_on_wall_and_floor():
    W, H = 64, 48
    K = pinhole_intrinsics(W, H, 70.0)
    rgb, depth = Renderer(RoomScene(ROOM)).render(K, look_pose([0.0, 0.0, 1.5], 0.0), W, H)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert depth.shape == (H, W) and depth.dtype == np.float32
    # the wall x = 4 faces the camera: constant z-depth 4 wherever it is visible (image centre)
    np.testing.assert_allclose(depth[H // 2 - 3:H // 2 + 3, W // 2 - 3:W // 2 + 3], 4.0, atol=1e-5)
    # floor, bottom row: ray (x_n, y_n, 1) with y_n = (v - cy) / fy reaches z = 0 at depth 1.5 / y_n
    v = H - 1
    expected = 1.5 / ((v - K[1, 2]) / K[1, 1])
    assert expected < 4.0
    np.testing.assert_allclose(depth[v, W // 2], expected, rtol=1e-5)


def test_box_occludes_wall_at_its_face_distance():
    W, H = 64, 48
    K = pinhole_intrinsics(W, H)
    scene = RoomScene(ROOM, boxes=[AxisAlignedBox((2.0, -0.5, 1.0), (2.5, 0.5, 2.0))])
    _, depth = Renderer(scene).render(K, look_pose([0.0, 0.0, 1.5], 0.0), W, H)
    np.testing.assert_allclose(depth[H // 2, W // 2], 2.0, atol=1e-5)
    assert abs(depth[2, W // 2] - 2.0) > 0.5  # above the box: ceiling/wall


def test_rendering_is_deterministic_textured_and_rejects_bad_cameras():
    a = SyntheticSequence(width=80, height=60, seed=3)
    b = SyntheticSequence(width=80, height=60, seed=3)
    ra, da = a.render(10)
    rb, db = b.render(10)
    assert np.array_equal(ra, rb) and np.array_equal(da, db)
    # textured: strong local intensity variation (a real network needs structure)
    grey = ra.astype(np.float64).mean(axis=2)
    assert grey.std() > 15 and np.abs(np.diff(grey, axis=1)).mean() > 2
    f = a.frame(10)
    assert f.rgb is ra and f.depth is da and f.stamp == pytest.approx(1.0) and f.K.shape == (3, 3)
    np.testing.assert_array_equal(f.T_world_cam, a.T_world_cam[10])
    with pytest.raises(IndexError, match="out of range"):
        a.render(len(a))
    with pytest.raises(ValueError, match="outside the room or inside a box"):
        a.renderer.render(a.K, look_pose([10.0, 0.0, 1.0], 0.0), 80, 60)
    with pytest.raises(ValueError, match="unknown camera path"):
        camera_path("nope")


def test_room_tour_has_forward_turn_stop_and_pure_rotation():
    path = camera_path("room_tour")
    assert len(path) == 300 and abs(path.stamps[-1] - 29.9) < 1e-9
    T = path.T_world_cam
    seg = np.array(path.segments)
    steps = np.linalg.norm(np.diff(T[:, :3, 3], axis=0), axis=1)
    stop = np.flatnonzero(seg == "stop")
    rot = np.flatnonzero(seg == "rotate")
    assert len(stop) == 30 and np.all(steps[stop[1:] - 1] == 0.0)
    assert np.all(steps[rot - 1] == 0.0)  # pure rotation: the centre does not move
    total_yaw = rotation_angle_deg(T[rot[0] - 1, :3, :3].T @ T[rot[-1], :3, :3])
    assert abs(total_yaw - 90.0) < 1e-6
    fwd = steps[seg[1:] == "forward"]
    assert 0.025 < np.median(fwd) < 0.035 and steps.max() < 0.04  # smooth, no jumps
    # rotations are proper (orthonormal, det +1)
    R = T[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_render_speed_320x240():
    seq = SyntheticSequence(cache=False)
    seq.render(0)
    t0 = time.process_time()  # CPU time of this process: robust to other jobs on the machine
    for i in range(0, 300, 30):
        seq.render(i)
    per_frame = (time.process_time() - t0) / 10
    assert per_frame < 0.1, f"{per_frame * 1000:.1f} ms CPU per 320x240 frame (300 frames must take well under 60 s)"


def test_oracle_without_noise_reproduces_ground_truth_in_window_frame():
    seq = SyntheticSequence(width=64, height=48)
    oracle = WindowOracle(seq, noise=ZERO, seed=5)
    ids = [3, 10, 20, 30]
    for ref_view, ref in (("first", 0), (2, 2), ("last", 3)):
        p = oracle.predict(ids, ref_view=ref_view)
        assert p.ref_index == ref and p.depth.shape == (4, 48, 64) and p.depth.dtype == np.float32
        assert 0.3 <= p.scale <= 3.0
        for v, i in enumerate(ids):
            np.testing.assert_allclose(p.depth[v], p.scale * seq.render(i)[1], rtol=1e-6)
        c2w = extrinsics_to_T_world_cam(p.extrinsics)
        np.testing.assert_allclose(c2w[ref], np.eye(4), atol=1e-6)
        for v, i in enumerate(ids):
            rel = invert_transform(seq.T_world_cam[ids[ref]]) @ seq.T_world_cam[i]
            np.testing.assert_allclose(c2w[v, :3, :3], rel[:3, :3], atol=1e-5)
            np.testing.assert_allclose(c2w[v, :3, 3], p.scale * rel[:3, 3], atol=1e-5)
        np.testing.assert_allclose(p.intrinsics[0], seq.K, rtol=1e-6)
        assert np.all(p.depth_conf >= 1.0)


def test_oracle_noise_low_confidence_and_garbage():
    seq = SyntheticSequence(width=64, height=48)
    oracle = WindowOracle(seq, seed=1, metric=True)
    p = oracle.predict([0, 5, 9, 12])
    assert p.scale == 1.0 and not p.garbage
    gt = np.stack([seq.render(i)[1] for i in (0, 5, 9, 12)])
    rel = np.abs(p.depth / gt - 1.0)
    low = p.depth_conf < 0.5 * np.median(p.depth_conf)
    assert low.mean() > 0.01  # some low-confidence regions
    assert np.median(rel[low]) > 3 * np.median(rel[~low])  # ... where the depth is worse
    assert 0.003 < np.median(rel[~low]) < 0.05
    g = oracle.predict([0, 5, 9, 12], garbage=True)
    assert g.garbage and np.median(np.abs(g.depth / gt - 1.0)) > 0.15
    with pytest.raises(ValueError, match="ref_view"):
        oracle.predict([0, 1], ref_view="saddle")


def test_oracle_resizes_to_network_resolution():
    seq = SyntheticSequence(width=64, height=48)
    p = WindowOracle(seq, noise=ZERO, out_hw=(28, 56)).predict([0, 1])
    assert p.depth.shape == (2, 28, 56)
    assert abs(p.intrinsics[0, 0, 0] - seq.K[0, 0] * 56 / 64) < 1e-4
    assert abs(p.intrinsics[0, 1, 2] - ((seq.K[1, 2] + 0.5) * 28 / 48 - 0.5)) < 1e-4
