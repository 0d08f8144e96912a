"""Synthetic robot: base trajectory on the floor, static camera chain, rendering through it, wheel odometry errors."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import invert_transform, rotation_angle_deg
from da3_ros.synthetic import SyntheticRobot, WheelOdometryConfig
from da3_ros.synthetic.robot import (BASE_FRAME, CAMERA_LINK_FRAME, CAMERA_OPTICAL_FRAME, T_CAMERALINK_OPTICAL,
                                     simulate_wheel_odometry)
from da3_ros.tracking.metrics import path_length

NOISE_FREE = WheelOdometryConfig(translation_noise=0.0, yaw_noise_deg=0.0)


def test_static_chain_composes_to_the_mounted_pitched_optical_frame():
    robot = SyntheticRobot()
    T = robot.T_base_cam
    np.testing.assert_allclose(T, robot.T_base_cameralink @ robot.T_cameralink_optical, atol=0)
    np.testing.assert_allclose(T[:3, 3], [0.3, 0.0, 0.2], atol=1e-12)  # 0.3 m forward, 0.2 m up
    a = np.radians(10.0)
    np.testing.assert_allclose(T[:3, 2], [np.cos(a), 0.0, -np.sin(a)], atol=1e-12)  # optical z: forward, 10 deg down
    np.testing.assert_allclose(T[:3, 0], [0.0, -1.0, 0.0], atol=1e-12)  # optical x: right = -y (left)
    np.testing.assert_allclose(T[:3, 1], [-np.sin(a), 0.0, -np.cos(a)], atol=1e-12)  # optical y: down (tilted)
    assert np.linalg.det(T_CAMERALINK_OPTICAL[:3, :3]) == pytest.approx(1.0)
    # camera_link keeps REP 103 axes: only pitched, no roll/yaw, y stays the base's left axis
    np.testing.assert_allclose(robot.T_base_cameralink[:3, 1], [0.0, 1.0, 0.0], atol=1e-12)
    names = [(p, c) for p, c, _ in robot.static_transforms]
    assert names == [(BASE_FRAME, CAMERA_LINK_FRAME), (CAMERA_LINK_FRAME, CAMERA_OPTICAL_FRAME)]
    # rendering poses are T_odom_base @ T_base_cam at the image stamps (10 Hz, 301 frames over 30 s)
    path = robot.camera_path()
    assert len(path) == 301 and path.fps == 10.0
    np.testing.assert_allclose(path.T_world_cam, robot.T_odom_base() @ T, atol=1e-12)


def test_base_trajectory_is_planar_with_forward_turn_stop_and_pure_rotation():
    robot = SyntheticRobot()
    tr = robot.trajectory
    assert [s[0] for s in tr.segments] == ["forward", "turn", "stop", "rotate", "forward"]
    assert tr.duration == pytest.approx(30.0)
    T = robot.T_odom_base()
    assert np.all(T[:, 2, 3] == 0.0) and np.all(T[:, 2, 2] == 1.0)  # on the floor, z up
    cam = robot.T_odom_cam()
    assert np.allclose(cam[:, 2, 3], 0.2)  # camera always 0.2 m above the floor
    assert all(robot.trajectory.segment_at(t) in ("stop", "rotate") for t in np.arange(16.0, 24.0, 0.1))
    rot = robot.T_odom_base(np.arange(19.0, 24.01, 0.1))
    assert np.ptp(rot[:, :3, 3], axis=0).max() < 1e-12  # the base does not move while rotating ...
    assert rotation_angle_deg(rot[0, :3, :3].T @ rot[-1, :3, :3]) == pytest.approx(90.0, abs=1e-6)
    swing = robot.T_odom_cam(np.array([19.0, 24.0]))[:, :3, 3]
    assert np.linalg.norm(swing[1] - swing[0]) == pytest.approx(0.3 * np.sqrt(2), abs=1e-6)  # ... the camera swings
    # 3 m (with a +-4 deg heading wobble) + quarter circle of 1 m + 1.8 m
    assert path_length(robot.T_odom_base(np.arange(0, 30.001, 0.01))) == pytest.approx(3.0 + np.pi / 2 + 1.8, rel=2e-3)
    # every camera pose is renderable: inside the room, >= 0.15 m from walls and boxes (it is 0.2 m above the floor)
    seq = robot.sequence(width=8, height=6, cache=False)
    assert all(seq.scene.is_free(p, margin=0.15) for p in cam[:, :3, 3])


def test_camera_sees_the_room_through_the_chain():
    robot = SyntheticRobot()
    W, H = 64, 48
    seq = robot.sequence(width=W, height=H)
    K = seq.K
    h, a = 0.2, np.radians(10.0)
    lo, hi = np.asarray(seq.scene.room.lo), np.asarray(seq.scene.room.hi)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    for i in (0, 120, 175, 215, 290):  # forward, turn, stop, rotate, forward
        rgb, depth = seq.render(i)
        assert np.all(np.isfinite(depth)) and depth.min() > 0.2
        assert rgb.astype(float).mean(axis=2).std() > 10  # textured, not a blank wall
        # back-project with the chain's pose: every point lies on the room's or a box's surface (inside the room)
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
        pts = (rays * depth[..., None]).reshape(-1, 3) @ seq.T_world_cam[i][:3, :3].T + seq.T_world_cam[i][:3, 3]
        assert np.all(pts >= lo - 1e-3) and np.all(pts <= hi + 1e-3)
        floor = np.abs(pts[:, 2]) < 1e-3
        assert 0.3 < floor.mean() < 0.85 and (pts[:, 2] > 0.3).mean() > 0.1  # floor below, walls/boxes above
        # bottom-centre pixel hits the floor at depth h / (y_n cos(pitch) + sin(pitch)) (pitched 10 deg down)
        y_n = (H - 1 - K[1, 2]) / K[1, 1]
        assert depth[H - 1, (W - 1) // 2] == pytest.approx(h / (y_n * np.cos(a) + np.sin(a)), rel=1e-4)


def test_wheel_odometry_without_noise_has_exactly_the_configured_scale_error_and_drift():
    robot = SyntheticRobot(odometry_config=NOISE_FREE)
    odo = robot.wheel_odometry
    assert len(odo) == 1501 and np.allclose(np.diff(odo.stamps), 0.02)  # 50 Hz over 30 s
    np.testing.assert_allclose(odo.T_odomwheel_base[0], np.eye(4))  # its own frame: identity at start
    gt = robot.trajectory
    x, y, yaw = gt.planar_at(odo.stamps)
    steps_true = np.hypot(np.diff(x), np.diff(y))
    steps_odo = np.hypot(np.diff(odo.x), np.diff(odo.y))
    np.testing.assert_allclose(steps_odo, 1.02 * steps_true, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(odo.yaw - (yaw - yaw[0]), np.radians(0.2) * odo.stamps, atol=1e-12)
    # body-frame increments are the truth's (scaled): the relative motion over 1 s agrees up to scale and drift
    Tg = gt.T_odom_base(odo.stamps)
    To = odo.T_odomwheel_base
    rel_g = invert_transform(Tg[100]) @ Tg[150]
    rel_o = invert_transform(To[100]) @ To[150]
    assert np.linalg.norm(rel_o[:3, 3]) == pytest.approx(1.02 * np.linalg.norm(rel_g[:3, 3]), rel=1e-5)
    # the drift turns the heading by 0.2 deg over that second: the chord leans left by half of it
    lateral = rel_o[1, 3] - 1.02 * rel_g[1, 3]
    assert lateral == pytest.approx(0.5 * np.radians(0.2) * np.linalg.norm(rel_o[:3, 3]), rel=0.05)


def test_wheel_odometry_error_statistics_with_noise():
    robot = SyntheticRobot()  # defaults: +2 % scale, 0.2 deg/s drift, 2 % step noise, 0.02 deg yaw noise, seed 0
    odo = robot.wheel_odometry
    gt = robot.trajectory
    x, y, yaw = gt.planar_at(odo.stamps)
    ratio = path_length(np.stack([odo.x, odo.y, 0 * odo.x], 1)) / path_length(np.stack([x, y, 0 * x], 1))
    # zero-mean per-step noise of 2 % over ~1000 moving steps: the sum varies by ~0.05 %
    assert ratio == pytest.approx(1.02, abs=0.002)
    # yaw error = drift * t + a random walk of 0.02 deg per step (~0.03 deg/s std of the fitted slope)
    err = np.degrees(odo.yaw - (yaw - yaw[0]))
    slope = np.polyfit(odo.stamps, err, 1)[0]
    assert slope == pytest.approx(0.2, abs=0.1)
    assert np.std(np.diff(err) - 0.2 / 50) == pytest.approx(0.02, rel=0.1)  # the per-step yaw noise
    # standing still: the wheels report no motion (noise is proportional to the step), only the heading drifts
    stop = (odo.stamps >= 16.05) & (odo.stamps <= 18.95)
    assert np.ptp(odo.x[stop]) == 0.0 and np.ptp(odo.y[stop]) == 0.0 and np.ptp(odo.yaw[stop]) > 0
    # seeded and deterministic; another seed differs
    again = simulate_wheel_odometry(gt, WheelOdometryConfig())
    np.testing.assert_array_equal(again.x, odo.x)
    other = simulate_wheel_odometry(gt, WheelOdometryConfig(seed=1))
    assert np.abs(other.x - odo.x).max() > 1e-4
    # lookups at image stamps hit samples exactly; between samples they interpolate
    np.testing.assert_allclose(odo.pose_at(1.0), odo.T_odomwheel_base[50], atol=1e-12)
    mid = odo.pose_at(1.01)
    np.testing.assert_allclose(mid[:2, 3], 0.5 * (odo.T_odomwheel_base[50, :2, 3] + odo.T_odomwheel_base[51, :2, 3]))
    with pytest.raises(ValueError, match="stamps must lie"):
        odo.pose_at(31.0)
    with pytest.raises(ValueError, match="scale_error"):
        WheelOdometryConfig(scale_error=-1.5)
