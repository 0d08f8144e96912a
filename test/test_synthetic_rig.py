"""Synthetic rig world: presets, ground-truth poses of every camera, visibility and overlap, stamps, the flat
view sequence the window oracle serves, the world's JSON form and the base pose between path frames."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import invert_transform, rotation_angle_deg, transform_points
from da3_ros.synthetic.rig import (RIG_PRESETS, CameraRig, R_BASE_OPTICAL, RigCamera, RigSequence, RigWorld,
                                   optical_mount, rig_preset, ring, stereo_pair)

ROOM_DIAGONAL = float(np.sqrt(8.0 ** 2 + 6.0 ** 2 + 3.0 ** 2))  # default_room is 8 x 6 x 3 m


def test_optical_mount_axes_follow_rep103():
    T = optical_mount([0.1, 0.2, 0.3])
    # optical z (forward) = base +x, optical x (right) = base -y, optical y (down) = base -z
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [0, 1, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(optical_mount([0, 0, 0], 90.0)[:3, :3] @ [0, 0, 1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(R_BASE_OPTICAL, optical_mount([0, 0, 0])[:3, :3])


def test_stereo_ground_truth_relative_pose_equals_the_preset():
    rig = stereo_pair(0.12)
    seq = RigSequence(rig, path_scale=0.3, width=32, height=24)
    T = seq.T_world_cam
    assert T.shape == (len(seq), 2, 4, 4)
    expected = rig.T_cam_cam(0, 1)
    np.testing.assert_allclose(expected[:3, 3], [0.12, 0.0, 0.0], atol=1e-12)  # right camera: +x of left
    np.testing.assert_allclose(expected[:3, :3], np.eye(3), atol=1e-12)
    for f in range(0, len(seq), 7):
        np.testing.assert_allclose(invert_transform(T[f, 0]) @ T[f, 1], expected, atol=1e-12)
        np.testing.assert_allclose(seq.frame(1, f).T_world_cam, T[f, 1], atol=1e-12)
    # the base follows the path: the midpoint of the pair is the path's camera centre
    np.testing.assert_allclose(0.5 * (T[:, 0, :3, 3] + T[:, 1, :3, 3]), seq.path.T_world_cam[:, :3, 3], atol=1e-12)


def test_ring_preset_geometry():
    rig = ring(3)
    assert rig.names == ["cam0", "cam1", "cam2"] and all(c.hfov_deg == 150.0 for c in rig.cameras)
    for a in range(3):
        b = (a + 1) % 3
        assert rotation_angle_deg(rig.T_cam_cam(a, b)[:3, :3]) == pytest.approx(120.0, abs=1e-9)
        # chord of a 0.10 m circle at 120 deg
        assert np.linalg.norm(rig.T_cam_cam(a, b)[:3, 3]) == pytest.approx(0.10 * np.sqrt(3.0), abs=1e-12)
    with pytest.raises(ValueError, match="unique"):
        CameraRig((RigCamera("a", np.eye(4)), RigCamera("a", np.eye(4))))
    with pytest.raises(ValueError, match="rigid"):
        CameraRig((RigCamera("a", 2.0 * np.eye(4)),))


@pytest.mark.parametrize("rig", [stereo_pair(), ring(3)], ids=["stereo", "ring"])
def test_every_camera_sees_the_room(rig):
    seq = RigSequence(rig, path_scale=0.2, width=80, height=60)
    for f in range(0, len(seq), 6):
        for c in range(len(rig)):
            rgb, depth = seq.render(c, f)
            assert np.all(np.isfinite(depth))
            # every pixel hits a room surface: in front of the camera and within the room's diagonal
            assert depth.min() > 0.05 and depth.max() < ROOM_DIAGONAL
            assert rgb.std() > 10.0  # textured, not a blank image


def _overlap(seq, f, a, b, step=4):
    """Fraction of camera a's pixels that camera b sees too, at the same depth (no occlusion)."""
    _, da = seq.render(a, f)
    _, db = seq.render(b, f)
    K = seq.K
    v, u = np.mgrid[0:seq.height:step, 0:seq.width:step]
    z = da[v, u].astype(np.float64).ravel()
    rays = np.stack([(u.ravel() - K[a][0, 2]) / K[a][0, 0], (v.ravel() - K[a][1, 2]) / K[a][1, 1], np.ones(z.size)], 1)
    T_b_a = invert_transform(seq.T_world_cam[f, b]) @ seq.T_world_cam[f, a]
    p = transform_points(T_b_a, rays * z[:, None])
    front = p[:, 2] > 0.05
    ub = K[b][0, 0] * p[:, 0] / np.where(front, p[:, 2], 1) + K[b][0, 2]
    vb = K[b][1, 1] * p[:, 1] / np.where(front, p[:, 2], 1) + K[b][1, 2]
    inside = front & (ub >= 0) & (ub <= seq.width - 1) & (vb >= 0) & (vb <= seq.height - 1)
    ok = np.zeros(z.size, bool)
    ib = np.flatnonzero(inside)
    zb = db[np.round(vb[ib]).astype(int), np.round(ub[ib]).astype(int)]
    ok[ib] = np.abs(zb - p[ib, 2]) < 0.05 * p[ib, 2]  # 5 %: nearest-pixel lookup at depth edges
    return ok.mean()


def test_neighbouring_cameras_overlap():
    # stereo: most of the left image is seen by the right camera; ring: 150 deg FOV, 120 deg apart
    stereo = RigSequence(stereo_pair(), path_scale=0.2, width=80, height=60)
    assert _overlap(stereo, 10, 0, 1) > 0.8
    rng_seq = RigSequence(ring(3), path_scale=0.2, width=80, height=60)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        frac = _overlap(rng_seq, 10, a, b)
        assert 0.15 < frac < 0.5, (a, b, frac)  # ~0.3 measured at 80x60


def test_stamps_jitter_and_half_rate():
    seq = RigSequence(stereo_pair(), path_scale=0.3, stamp_jitter_s=0.004, rate_divisors=[1, 2], seed=5)
    nominal = np.round(seq.path.stamps * 1e9).astype(np.int64)
    for c in range(2):
        t = np.array([seq.stamp_ns(c, i) for i in range(len(seq))])
        assert np.max(np.abs(t - nominal)) <= 4_000_000 and np.std(t - nominal) > 1_000_000
    assert list(seq.frame_indices(1)) == list(range(0, len(seq), 2))
    arr = seq.arrivals()
    assert len(arr) == len(seq) + (len(seq) + 1) // 2
    assert [a[1] for a in arr] == sorted(a[1] for a in arr)
    assert seq.frame(1, 4).stamp == pytest.approx(seq.stamp_ns(1, 4) * 1e-9)
    with pytest.raises(ValueError, match="rate_divisors"):
        RigSequence(stereo_pair(), rate_divisors=[1])


def test_rig_presets_by_name():
    stereo = rig_preset("stereo", baseline=0.2)
    assert stereo.names == ["left", "right"]
    np.testing.assert_allclose(stereo.T_base_cam, stereo_pair(0.2).T_base_cam, atol=0)
    ring4 = rig_preset("ring", num_cameras=4)
    assert ring4.names == ["cam0", "cam1", "cam2", "cam3"]
    np.testing.assert_allclose(ring4.T_base_cam, ring(4).T_base_cam, atol=0)
    assert rig_preset("ring").names == ["cam0", "cam1", "cam2"] and RIG_PRESETS == ("stereo", "ring")
    with pytest.raises(ValueError, match="unknown rig preset 'trinocular'; known presets: stereo, ring"):
        rig_preset("trinocular")
    with pytest.raises(ValueError, match="baseline must be > 0"):
        rig_preset("stereo", baseline=0.0)


@pytest.mark.parametrize("preset", RIG_PRESETS)
def test_view_sequence_flattens_cameras_and_rig_poses(preset):
    seq = RigWorld(preset, path_scale=0.2).sequence(40, 30)
    views = seq.views()
    C = len(seq.rig)
    assert len(views) == len(seq) * C and views.T_world_cam.shape == (len(seq) * C, 4, 4)
    np.testing.assert_array_equal(views.K, seq.K[0])
    for index, camera in ((0, 0), (3, C - 1), (len(seq) - 1, 1)):
        v = seq.view_id(camera, index)
        assert v == index * C + camera and views.camera_and_index(v) == (camera, index)
        np.testing.assert_array_equal(views.T_world_cam[v], seq.T_world_cam[index, camera])
        rgb, depth = views.render(v)
        np.testing.assert_array_equal(rgb, seq.render(camera, index)[0])
        np.testing.assert_array_equal(depth, seq.render(camera, index)[1])
    with pytest.raises(IndexError, match="view id"):
        views.render(len(views))
    with pytest.raises(IndexError, match="camera index"):
        seq.view_id(C, 0)


def test_view_sequence_refuses_cameras_of_different_intrinsics():
    rig = CameraRig((RigCamera("wide", optical_mount([0, 0.05, 0]), 90.0), RigCamera("tele", optical_mount([0, 0, 0]))))
    with pytest.raises(ValueError, match="different intrinsics"):
        RigSequence(rig, width=32, height=24).views()


def test_rig_world_round_trip_and_identical_images():
    world = RigWorld("ring", num_cameras=3, path_scale=0.2, seed=3)
    data = world.to_dict()
    assert data == {"preset": "ring", "baseline": 0.12, "num_cameras": 3, "path": "room_tour", "path_scale": 0.2,
                    "seed": 3, "yaw_deg": 0.0, "camera_offset_s": 0.0}
    again = RigWorld.from_dict(data)
    assert again == world and RigWorld.from_dict({"preset": "stereo"}) == RigWorld()
    a, b = world.sequence(40, 30), again.sequence(40, 30, stamp_jitter_s=0.01, rate_divisors=[1, 2, 3])
    np.testing.assert_array_equal(a.render(2, 5)[0], b.render(2, 5)[0])   # stamps and rates do not change images
    with pytest.raises(ValueError, match=r"unknown rig world keys \['fps'\]"):
        RigWorld.from_dict({"preset": "stereo", "fps": 10})
    with pytest.raises(ValueError, match="unknown rig preset"):
        RigWorld("mono")
    with pytest.raises(ValueError, match="unknown camera path"):
        RigWorld(path="nowhere")


def test_base_pose_between_path_frames():
    seq = RigWorld(path_scale=0.5).sequence(32, 24)
    fps = seq.path.fps
    # exact at path frames (the frame's own matrix, not a round trip through quaternions)
    np.testing.assert_array_equal(seq.T_world_base_at(np.arange(len(seq)) / fps), seq.T_world_base)
    i = 20
    mid = seq.T_world_base_at((i + 0.5) / fps)
    T0, T1 = seq.T_world_base[i], seq.T_world_base[i + 1]
    np.testing.assert_allclose(mid[:3, 3], 0.5 * (T0[:3, 3] + T1[:3, 3]), atol=1e-12)
    # the midpoint rotation is half way: equal angles to both neighbours
    a0, a1 = rotation_angle_deg(T0[:3, :3].T @ mid[:3, :3]), rotation_angle_deg(mid[:3, :3].T @ T1[:3, :3])
    assert a0 == pytest.approx(a1, abs=1e-9) and a0 > 0
    assert seq.T_world_base_at([[0.0, 0.1]]).shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match="path time"):
        seq.T_world_base_at(len(seq) / fps)


def test_unsynchronised_cameras_capture_at_their_own_stamp():
    """``camera_offset_s``: camera c's stamp and rendered pose are those of the rig frame's time + c x offset."""
    world = RigWorld(yaw_deg=-90.0, path_scale=0.3, camera_offset_s=0.015)
    seq = world.sequence(32, 24)
    fps = seq.path.fps
    for i in (0, 7, len(seq) - 2):
        assert seq.stamp_ns(1, i) - seq.stamp_ns(0, i) == 15_000_000
        np.testing.assert_allclose(seq.T_world_base_capture(1, i), seq.T_world_base_at((i + 0.15) / fps), atol=1e-12)
        np.testing.assert_array_equal(seq.T_world_base_capture(0, i), seq.T_world_base[i])
        np.testing.assert_allclose(seq.T_world_cam[i, 1], seq.T_world_base_capture(1, i) @ seq.rig.T_base_cam[1])
    # 1 m/s along base x, the pair looking right: 15 mm of the right camera's motion lies along the baseline
    moved = seq.T_world_base_capture(1, 5)[:3, 3] - seq.T_world_base[5][:3, 3]
    assert np.linalg.norm(moved) == pytest.approx(0.015, rel=0.02)
    baseline = seq.T_world_base[5][:3, :3] @ (seq.rig.T_base_cam[1, :3, 3] - seq.rig.T_base_cam[0, :3, 3])
    # (cos of the angle: the base is pitched -8 deg and its heading wobbles by up to 4 deg about the travel)
    assert 0.95 <= abs(moved @ baseline) / (0.015 * 0.12) <= 1.0
    # past the last frame: along the last segment
    last = seq.T_world_base_capture(1, len(seq) - 1)[:3, 3] - seq.T_world_base[-1][:3, 3]
    assert np.linalg.norm(last) == pytest.approx(0.15 * np.linalg.norm(seq.T_world_base[-1][:3, 3]
                                                                       - seq.T_world_base[-2][:3, 3]), rel=1e-6)
    # the images differ from a synchronised world's for camera 1 only
    sync = RigWorld(yaw_deg=-90.0, path_scale=0.3).sequence(32, 24)
    np.testing.assert_array_equal(seq.render(0, 3)[0], sync.render(0, 3)[0])
    assert np.any(seq.render(1, 3)[0] != sync.render(1, 3)[0])
    assert RigWorld.from_dict(world.to_dict()) == world
