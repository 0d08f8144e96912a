"""RobotFrames: configure-time refusals, the mount and odometry lookups (TransformBuffer), the published edge."""
import numpy as np
import pytest

from da3_ros.tf_tree.transform_buffer import TransformBuffer
from da3_ros.node.robot_frames import RobotFrameError, RobotFrames, RobotFrameSettings, robot_frame_problems
from da3_ros.synthetic.robot import SyntheticRobot

ROBOT = SyntheticRobot()
NS = 1_000_000_000


def _values(**kw):
    base = dict(odom_frame="odom", base_frame="base_link", camera_frame="", odometry_frame="wheel_odom",
                publish_tf=True, scale_source="odometry", pose_source="none")
    base.update(kw)
    return base


def test_valid_configurations_pass():
    assert robot_frame_problems(_values()) == []
    assert robot_frame_problems(_values(base_frame="", scale_source="none", odometry_frame="odom")) == []
    # an EKF or the wheel odometry owns odom -> base_link: reading it is fine when the node does not publish
    assert robot_frame_problems(_values(odometry_frame="odom", publish_tf=False, pose_source="tf")) == []


@pytest.mark.parametrize("overrides, words", [
    (dict(odometry_frame="odom"), ["odometry_frame == odom_frame", "publish_tf: false", "wheel_odom"]),
    (dict(base_frame=""), ["need base_frame"]),
    (dict(base_frame="odom", scale_source="none"), ["base_frame and odom_frame"]),
    (dict(odometry_frame="base_link"), ["odometry_frame and base_frame"]),
    (dict(odometry_frame="", pose_source="tf"), ["need odometry_frame"]),
    (dict(odom_frame="/odom", scale_source="none"), ["plain frame id"]),
])
def test_refusals_name_the_reason(overrides, words):
    problems = robot_frame_problems(_values(**overrides))
    assert problems, overrides
    text = " ".join(problems)
    for w in words:
        assert w in text, (w, text)


def _buffer(with_mount=True):
    buf = TransformBuffer(cache_time_s=60.0)
    if with_mount:
        for parent, child, T in ROBOT.static_transforms:
            buf.set_transform(parent, child, 0, T, static=True)
    wheel = ROBOT.wheel_odometry
    for t, T in zip(wheel.stamps[:200], wheel.T_odomwheel_base[:200]):
        buf.set_transform("wheel_odom", "base_link", int(round((1000 + t) * NS)), T)
    return buf


def test_mount_and_odometry_lookups():
    frames = RobotFrames(RobotFrameSettings.from_settings(_values()), _buffer())
    np.testing.assert_allclose(frames.T_base_cam("camera_optical"), ROBOT.T_base_cam, atol=1e-9)
    t = 1.234   # between two 50 Hz samples: interpolated as TF does, like WheelOdometry.pose_at
    T = frames.odometry_pose(int(round((1000 + t) * NS)))
    np.testing.assert_allclose(T, ROBOT.wheel_odometry.pose_at(t), atol=1e-6)
    assert frames.body_frame("camera_optical") == "base_link"
    # beyond the newest sample: no pose, counted, with the frames named
    assert frames.odometry_pose(int(2000 * NS)) is None
    assert frames.odometry_failures == 1 and "wheel_odom -> base_link" in frames.last_error
    # without base_frame the camera is the body: identity mount, no lookup
    cam_only = RobotFrames(RobotFrameSettings.from_settings(_values(base_frame="", scale_source="none")), _buffer())
    np.testing.assert_allclose(cam_only.T_base_cam("camera_optical"), np.eye(4))
    assert cam_only.odometry_pose(int(1001 * NS)) is None and cam_only.odometry_failures == 0


def test_missing_mount_is_a_clear_error():
    settings = RobotFrameSettings.from_settings(dict(_values(), tf_mount_timeout_s=0.05))
    frames = RobotFrames(settings, _buffer(with_mount=False))
    with pytest.raises(RobotFrameError, match="base_link -> camera_optical.*robot_state_publisher"):
        frames.T_base_cam("camera_optical")


def test_published_edge_follows_the_guess_frame_convention():
    buf = _buffer()
    T_odom_base = np.eye(4)
    T_odom_base[:3, 3] = [0.5, 0.1, 0.0]
    frames = RobotFrames(RobotFrameSettings.from_settings(_values()), buf)
    stamp = int(round(1001.0 * NS))
    T_wheel = frames.odometry_pose(stamp)
    parent, child, T = frames.published_edge("camera_optical", T_odom_base, T_wheel)
    assert (parent, child) == ("odom", "wheel_odom")
    # with that edge in the tree, odom -> base_link through the wheel odometry equals the visual estimate
    buf.set_transform(parent, child, stamp, T)
    np.testing.assert_allclose(buf.lookup("odom", "base_link", stamp), T_odom_base, atol=1e-6)
    # every frame keeps one parent
    assert buf.parent_of("base_link") == "wheel_odom" and buf.parent_of("camera_link") == "base_link"
    assert frames.published_edge("camera_optical", T_odom_base, None) is None   # no wheel pose: nothing
    plain = RobotFrames(RobotFrameSettings.from_settings(_values(scale_source="none")), buf)
    assert plain.published_edge("camera_optical", T_odom_base, None)[:2] == ("odom", "base_link")
    cam = RobotFrames(RobotFrameSettings.from_settings(_values(base_frame="", scale_source="none")), buf)
    assert cam.published_edge("camera_optical", T_odom_base, None)[:2] == ("odom", "camera_optical")
    # publish_tf: false (e.g. an EKF owns odom -> base_link) is the caller's switch: the edge is still defined
    ekf = RobotFrames(RobotFrameSettings.from_settings(_values(publish_tf=False, odometry_frame="odom")), buf)
    assert ekf.published_edge("camera_optical", T_odom_base, T_wheel)[:2] == ("odom", "base_link")


def test_a_missing_mount_backs_off_and_never_waits():
    # tf_mount_timeout_s is the longest back-off: 0.1, 0.2, 0.4, 0.8 (then 0.8) s between two lookups
    import time

    now = [100.0]
    settings = RobotFrameSettings.from_settings(dict(_values(), tf_mount_timeout_s=0.8))
    buf = _buffer(with_mount=False)
    frames = RobotFrames(settings, buf, clock=lambda: now[0])
    lookups_at = []
    t0 = time.monotonic()
    for step in range(40):   # 40 frames 0.1 s apart (4 s); 1 us late, so float rounding cannot move a retry
        now[0] = 100.0 + 0.1 * step + 1e-6
        before = frames.mount_lookups
        with pytest.raises(RobotFrameError, match="base_link -> camera_optical"):
            frames.T_base_cam("camera_optical")
        if frames.mount_lookups > before:
            lookups_at.append(round(now[0] - 100.0, 3))
    wall = time.monotonic() - t0
    assert lookups_at[:5] == [0.0, 0.1, 0.3, 0.7, 1.5] and len(lookups_at) == 8, lookups_at   # 1.5 + 3 x 0.8
    # only the first lookup waited (bring-up grace, min(MOUNT_FIRST_WAIT_S, tf_mount_timeout_s) = 0.8 s); the old
    # code waited tf_mount_timeout_s on every frame (40 x 0.8 s)
    assert wall < 0.8 + 0.5, wall
    assert "next one in 0.8 s" in frames.last_error
    # the mount arrives: the next due lookup finds it, and it is cached from then on
    for parent, child, T in ROBOT.static_transforms:
        buf.set_transform(parent, child, 0, T, static=True)
    now[0] += 0.8
    np.testing.assert_allclose(frames.T_base_cam("camera_optical"), ROBOT.T_base_cam, atol=1e-9)
    n = frames.mount_lookups
    frames.T_base_cam("camera_optical")
    assert frames.mount_lookups == n


def test_odometry_lookup_without_waiting():
    import time

    frames = RobotFrames(RobotFrameSettings.from_settings(dict(_values(), tf_timeout_s=2.0)), _buffer())
    t0 = time.monotonic()
    assert frames.odometry_pose(int(2000 * NS), timeout_s=0.0) is None
    assert time.monotonic() - t0 < 0.5 and "without waiting" in frames.last_error
