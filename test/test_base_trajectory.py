"""BaseOdometry: camera poses + mount + scale -> REP 105 base poses, body twist, covariance model."""
import numpy as np
import pytest

from da3_ros.synthetic.robot import SyntheticRobot, planar_pose
from da3_ros.tracking.base_trajectory import (UNKNOWN_VARIANCE, BaseOdometry, CovarianceModel, T_odom_base_from_camera,
                                              T_odom_odometry, body_twist)
from da3_ros.geometry.transforms import invert_transform, rotation_from_axis_angle, rotation_log


ROBOT = SyntheticRobot()


def _visual(stamps, units_per_metre):
    """What a perfect tracker reports: camera poses relative to the first camera, in odometry units."""
    T_cam = ROBOT.T_odom_cam(stamps)
    T_vis = invert_transform(T_cam[0]) @ T_cam
    T_vis[:, :3, 3] *= units_per_metre
    return T_vis


def test_base_poses_from_camera_poses_equal_the_truth_relative_to_the_start():
    stamps = ROBOT.camera_stamps[::7]
    T_vis = _visual(stamps, units_per_metre=0.37)
    gt = ROBOT.T_odom_base(stamps)
    gt_rel = invert_transform(gt[0]) @ gt       # odom = base at the first frame
    for T_v, T_gt in zip(T_vis, gt_rel):
        T = T_odom_base_from_camera(T_v, ROBOT.T_base_cam, 1 / 0.37)
        np.testing.assert_allclose(T, T_gt, atol=1e-9)   # exact algebra: float64 round-off only
    # the base stays on the floor plane (z = 0, no roll/pitch) although the camera is pitched 10 deg
    T = T_odom_base_from_camera(T_vis[-1], ROBOT.T_base_cam, 1 / 0.37)
    assert abs(T[2, 3]) < 1e-9 and abs(T[2, 2] - 1) < 1e-9


def test_body_twist_of_a_planar_arc():
    # 0.3 m/s forward while turning at 0.2 rad/s: in the body frame v = (0.3, 0, 0), w = (0, 0, 0.2)
    v, w, dt = 0.3, 0.2, 0.1
    T0 = planar_pose(1.0, -2.0, 0.7)
    chord = 2 * v / w * np.sin(w * dt / 2)
    T1 = T0 @ planar_pose(chord * np.cos(w * dt / 2), chord * np.sin(w * dt / 2), w * dt)
    lin, ang = body_twist(T0, T1, dt)
    np.testing.assert_allclose(ang, [0, 0, w], atol=1e-12)
    # a finite-difference twist is the chord over dt, rotated into the new frame: within v * (w dt)^2 / 8
    np.testing.assert_allclose(np.linalg.norm(lin), chord / dt, atol=1e-12)
    assert abs(lin[0] - v) < 2e-3 and abs(lin[1]) < 2e-2
    with pytest.raises(ValueError):
        body_twist(T0, T1, 0.0)


@pytest.mark.parametrize("angle", [1e-9, 0.3, 2.0, np.pi - 1e-6])
def test_rotation_log_inverts_axis_angle(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    np.testing.assert_allclose(rotation_log(rotation_from_axis_angle(axis * angle)), axis * angle, atol=1e-6)


def test_odometry_correction_edge_closes_the_chain():
    T_odom_base = planar_pose(1.0, 2.0, 0.3)
    T_wheel_base = planar_pose(0.9, 2.1, 0.25)
    T_corr = T_odom_odometry(T_odom_base, T_wheel_base)
    np.testing.assert_allclose(T_corr @ T_wheel_base, T_odom_base, atol=1e-12)


def test_odometry_samples_twist_covariance_and_rescaled_path():
    stamps = ROBOT.camera_stamps[:40]
    u = 0.37
    T_vis = _visual(stamps, u)
    odo = BaseOdometry(ROBOT.T_base_cam, scale_expected=True)
    stats = {"median_residual": 0.01, "inlier_ratio": 0.9, "shared_rotation_error_deg": 0.2}
    first = odo.update(stamps[0], T_vis[0], None, None, None, 2.0 * u)
    # scale unknown while a scale source is configured: positions must not be fused, rotations may be
    assert not first.scale_known and not first.twist_known
    assert np.all(np.diag(first.pose_covariance)[:3] == UNKNOWN_VARIANCE)
    assert np.all(np.diag(first.pose_covariance)[3:] < 1e-3)
    assert np.all(np.diag(first.twist_covariance) == UNKNOWN_VARIANCE)
    samples = [odo.update(t, T, 1 / u, 0.01, stats, 2.0 * u) for t, T in zip(stamps[1:], T_vis[1:])]
    s = samples[-1]
    assert s.scale_known and s.twist_known
    # true body velocity at the end of the first 4 s: 0.3 m/s forward (heading wobble: small lateral part)
    assert abs(s.linear[0] - 0.3) < 0.01 and abs(s.linear[1]) < 0.03 and abs(s.angular[2]) < 0.05
    cov = np.diag(s.pose_covariance)
    # per-frame sigma = max(1 cm, 1.0 * 0.01 * 2 m) / 0.9 = 2.2 cm; drift 2 % of ~1.17 m; scale 1 % of |t|
    path = odo.path_length_m
    expected = (0.02 / 0.9) ** 2 + (0.02 * path) ** 2 + (0.01 * np.linalg.norm(s.T_odom_base[:3, 3])) ** 2
    assert abs(path - 1.17) < 0.05
    np.testing.assert_allclose(cov[:3], expected, rtol=1e-9)
    assert np.all(cov > 0) and np.all(np.isfinite(cov))
    np.testing.assert_allclose(np.diag(s.twist_covariance)[3:], 2 * np.radians(0.5) ** 2 / 0.1 ** 2, rtol=1e-6)
    # the whole path re-expressed at the current scale equals the truth relative to the start
    st, T = odo.path(1 / u)
    gt = ROBOT.T_odom_base(st)
    np.testing.assert_allclose(T, invert_transform(gt[0]) @ gt, atol=1e-9)
    # a bad alignment (low inlier ratio, large residual) is reported as larger uncertainty
    worse = odo.update(stamps[-1] + 0.1, T_vis[-1], 1 / u, 0.01,
                       {"median_residual": 0.05, "inlier_ratio": 0.5, "shared_rotation_error_deg": 3.0}, 2.0 * u)
    assert np.diag(worse.pose_covariance)[0] > 4 * cov[0] and np.diag(worse.pose_covariance)[5] > 10 * cov[5]
    odo.reset()
    assert odo.path()[0].size == 0 and not odo.update(5.0, T_vis[0], 1 / u).twist_known


def test_without_a_known_scale_positions_are_not_fusable_and_the_camera_is_the_body():
    # odometry units are not metres (issue 19): position variances 1e6 with or without a scale source, rotation
    # fusable; a known scale makes the positions fusable
    for expected in (False, True):
        odo = BaseOdometry(None, scale_expected=expected)
        s = odo.update(0.0, np.eye(4))
        assert not s.scale_known and np.all(np.diag(s.pose_covariance)[:3] == UNKNOWN_VARIANCE)
        assert np.all(np.diag(s.pose_covariance)[3:] < 1e-2)
        s = odo.update(0.1, np.eye(4), scale=2.0)
        assert s.scale_known and np.all(np.diag(s.pose_covariance) < 1.0)
    with pytest.raises(ValueError):
        BaseOdometry(np.diag([2.0, 2.0, 2.0, 1.0]))   # not rigid
    with pytest.raises(ValueError):
        CovarianceModel(min_position_sigma_m=0.0)
