"""PoseOutputs' publishing convention on real ROS messages (no DDS): tracked in metres -> pose/odometry/path (the
correction edge for the node's TF timer); not in metres -> withheld with a scale source (publish_unscaled auto),
published with position variance 1e6 otherwise; lost -> nothing; camera-only odom in REP 103 axes, or the root of
the camera's static tree (never a second parent)."""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from builtin_interfaces.msg import Time

from da3_ros.tf_tree.transform_buffer import TransformBuffer
from da3_ros.geometry.transforms import invert_transform
from da3_ros.ros_io import transform_to_matrix
from da3_ros.node.pose_outputs import PoseOutputs
from da3_ros.synthetic.robot import SyntheticRobot
from da3_ros.tracking.base_trajectory import UNKNOWN_VARIANCE
from da3_ros.tracking.metric_scale import ScaleEstimate

ROBOT = SyntheticRobot()
NS = 1_000_000_000


def _publish(outputs, frame, stamp, camera_frame, pubs, tf, settings):
    """What the node does with the messages: publish each on its topic, the TF edge on /tf."""
    messages = outputs.messages(frame, stamp, camera_frame, settings["odom_frame"])
    for name in ("pose", "odometry", "path"):
        if name in messages:
            pubs[name].publish(messages[name])
    if "tf" in messages:
        tf.send([messages["tf"]])
    edge = outputs.correction_edge()   # what the node's TF timer republishes (correction mode)
    if edge is not None:
        tf.send([edge])
    return outputs.last_sample


class Recorder:
    def __init__(self):
        self.messages = []

    def publish(self, msg):
        self.messages.append(msg)

    def send(self, transforms):
        self.messages.extend(transforms)


@dataclass
class Frame:   # the fields of WindowOutcome that the publisher reads
    T_odom_cam: Optional[np.ndarray]
    metres_per_unit: Optional[float] = None
    scale_estimate: Optional[ScaleEstimate] = None
    tracking_stats: dict = field(default_factory=dict)
    median_depth: Optional[float] = None
    T_odometry_base: Optional[np.ndarray] = None
    reset: bool = False
    reinitialised: bool = False


def _buffer():
    buf = TransformBuffer(cache_time_s=60.0)
    for parent, child, T in ROBOT.static_transforms:
        buf.set_transform(parent, child, 0, T, static=True)
    wheel = ROBOT.wheel_odometry
    for t, T in zip(wheel.stamps[:300], wheel.T_odomwheel_base[:300]):
        buf.set_transform("wheel_odom", "base_link", int(round((1000 + t) * NS)), T)
    return buf


SETTINGS = dict(odom_frame="odom", base_frame="base_link", camera_frame="", odometry_frame="wheel_odom",
                publish_tf=True, scale_source="odometry", pose_source="none", publish_pose=True, path_max_length=100)


def test_convention_over_a_short_trajectory():
    buf = _buffer()
    pub = PoseOutputs(SETTINGS, lambda: buf, scale_expected=True)
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    u = 0.4   # odometry units per metre of the (perfect) visual odometry
    T_cam = ROBOT.T_odom_cam(ROBOT.camera_stamps[:6])
    T_vis = invert_transform(T_cam[0]) @ T_cam
    T_vis[:, :3, 3] *= u
    known = ScaleEstimate(state="known", scale=1 / u, uncertainty=0.01 / u, relative_uncertainty=0.01)
    for k, t in enumerate(ROBOT.camera_stamps[:6]):
        stamp_ns = int(round((1000 + t) * NS))
        stamp = Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS)
        T_base_cam, T_wheel = pub.inputs("camera_optical", stamp_ns)
        np.testing.assert_allclose(T_base_cam, ROBOT.T_base_cam, atol=1e-9)
        scale = known if k >= 2 else ScaleEstimate()
        lost = k == 4
        frame = Frame(None if lost else T_vis[k], scale.scale, scale, {}, 2.0 * u, T_wheel)
        counts = {n: len(r.messages) for n, r in pubs.items()}, len(tf.messages)
        sample = _publish(pub, frame, stamp, "camera_optical", pubs, tf, SETTINGS)
        new = {n: len(r.messages) - counts[0][n] for n, r in pubs.items()}, len(tf.messages) - counts[1]
        parent, child, T_edge = tf.messages[-1]   # the correction edge exists from the first frame
        assert (parent, child) == ("odom", "wheel_odom")
        if lost:
            assert sample is None and new == ({"pose": 0, "odometry": 0, "path": 0}, 1)
        elif k < 2:   # scale unknown, a scale source configured: nothing in odometry units; the edge identity
            assert new == ({"pose": 0, "odometry": 0, "path": 0}, 1)
            np.testing.assert_array_equal(T_edge, np.eye(4))
        else:
            assert new == ({"pose": 1, "odometry": 1, "path": 1}, 1)
            odo = pubs["odometry"].messages[-1]
            assert (odo.header.frame_id, odo.child_frame_id) == ("odom", "base_link")
            # odom -> wheel_odom -> base_link (wheel odometry at the stamp) = the published base pose
            np.testing.assert_allclose(T_edge @ T_wheel, transform_to_matrix_pose(odo.pose.pose), atol=1e-6)
            # the base pose is the truth relative to the first frame (perfect visual odometry, exact scale)
            gt = ROBOT.T_odom_base([0.0, t])
            np.testing.assert_allclose(sample.T_odom_base, invert_transform(gt[0]) @ gt[1], atol=1e-9)
            # body twist from consecutive poses: 0.3 m/s forward (the lost frame only lengthens dt)
            assert sample.twist_known and abs(odo.twist.twist.linear.x - 0.3) < 0.02
    assert pub.withheld_frames == 2 and pub.units.describe()["withheld_not_metres"] == 2
    path = pubs["path"].messages[-1]
    # every tracked frame is in the path (the first two re-expressed at the now known scale), lost one absent
    assert [p.header.stamp.nanosec for p in path.poses] == [
        int(round((1000 + t) * NS)) % NS for k, t in enumerate(ROBOT.camera_stamps[:6]) if k != 4]
    first = path.poses[1].pose.position
    gt = ROBOT.T_odom_base([0.0, 0.1])
    np.testing.assert_allclose([first.x, first.y], (invert_transform(gt[0]) @ gt[1])[:2, 3], atol=1e-9)


def transform_to_matrix_pose(pose):
    from geometry_msgs.msg import Transform

    t = Transform()
    t.translation.x, t.translation.y, t.translation.z = pose.position.x, pose.position.y, pose.position.z
    t.rotation = pose.orientation
    return transform_to_matrix(t)


def _d435_tree(dynamic_parent: str = ""):
    """A RealSense driver's /tf_static: camera_link -> camera_color_frame -> camera_color_optical_frame (and, with
    ``dynamic_parent``, another node's odometry owning camera_link's parent)."""
    from da3_ros.node.robot_frames import T_BODY_OPTICAL

    buf = TransformBuffer(cache_time_s=60.0)
    T_link_color = np.eye(4)
    T_link_color[:3, 3] = [0.0, 0.015, 0.0]
    buf.set_transform("camera_link", "camera_color_frame", 0, T_link_color, static=True)
    buf.set_transform("camera_color_frame", "camera_color_optical_frame", 0, T_BODY_OPTICAL, static=True)
    if dynamic_parent:
        buf.set_transform(dynamic_parent, "camera_link", 5 * NS, np.eye(4))
    return buf, T_link_color @ T_BODY_OPTICAL


def _camera_only(buf, **overrides):
    settings = dict(SETTINGS, base_frame="", scale_source="none", odometry_frame="odom", **overrides)
    return PoseOutputs(settings, lambda: buf, False), settings


def _camera_motion():
    """Camera poses in the first camera frame (optical axes): forward (z) 0.2, right (x) 0.1, a yaw."""
    T = np.eye(4)
    c, s_ = np.cos(0.1), np.sin(0.1)
    T[:3, :3] = [[c, 0, s_], [0, 1, 0], [-s_, 0, c]]   # about the optical y axis (down): a turn
    T[:3, 3] = [0.1, 0.0, 0.2]
    return [np.eye(4), T]


def test_camera_only_without_a_tree_has_a_rep103_odom_and_honest_covariance():
    from da3_ros.node.robot_frames import T_BODY_OPTICAL

    pub, settings = _camera_only(TransformBuffer())
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    for k, T in enumerate(_camera_motion()):
        _publish(pub, Frame(T), Time(sec=5 + k), "cam", pubs, tf, settings)
    assert [(m.header.frame_id, m.child_frame_id) for m in tf.messages] == [("odom", "cam")] * 2
    T_odom_cam = transform_to_matrix(tf.messages[-1].transform)
    np.testing.assert_allclose(T_odom_cam, T_BODY_OPTICAL @ _camera_motion()[1], atol=1e-9)
    # REP 103: the camera looked along odom x; moving 0.2 forward and 0.1 right is x = 0.2, y = -0.1, z = 0
    np.testing.assert_allclose(T_odom_cam[:3, 3], [0.2, -0.1, 0.0], atol=1e-9)
    # odom's z is up: the camera's down axis (optical y) is -z
    np.testing.assert_allclose(T_odom_cam[:3, 1], [0.0, 0.0, -1.0], atol=1e-9)
    odo = pubs["odometry"].messages[-1]
    cov = np.reshape(odo.pose.covariance, (6, 6))
    # no scale source: odometry units, not metres -> positions not to be fused, rotation fusable
    assert odo.child_frame_id == "cam" and np.all(np.diag(cov)[:3] == UNKNOWN_VARIANCE) and cov[5, 5] < 1e-2
    assert pub.units.publish_unscaled and pub.units.unscaled_published == 2 and pub.withheld_frames == 0


def test_camera_only_with_a_driver_tree_publishes_odom_to_its_root():
    buf, T_link_optical = _d435_tree()
    pub, settings = _camera_only(buf)
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    for k, T in enumerate(_camera_motion()):
        _publish(pub, Frame(T), Time(sec=5 + k), "camera_color_optical_frame", pubs, tf, settings)
    # the optical frame keeps its one (static) parent: the node's edge is odom -> camera_link, the tree's root
    assert [(m.header.frame_id, m.child_frame_id) for m in tf.messages] == [("odom", "camera_link")] * 2
    assert pubs["odometry"].messages[-1].child_frame_id == "camera_link"
    np.testing.assert_allclose(transform_to_matrix(tf.messages[0].transform), np.eye(4), atol=1e-12)
    # through the static chain, odom -> optical is the camera's motion in odom (= camera_link at the first frame)
    T_odom_link = transform_to_matrix(tf.messages[-1].transform)
    np.testing.assert_allclose(T_odom_link @ T_link_optical, T_link_optical @ _camera_motion()[1], atol=1e-9)
    assert "odom -> camera_link" in pub.describe()["tf_camera_tree"]


def test_camera_only_refuses_a_second_parent_with_the_fix():
    buf, _ = _d435_tree(dynamic_parent="vio_odom")
    pub, settings = _camera_only(buf)
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    for k, T in enumerate(_camera_motion()):
        _publish(pub, Frame(T), Time(sec=5 + k), "camera_color_optical_frame", pubs, tf, settings)
    assert tf.messages == [] and pub.tf_refused == 2 and len(pubs["odometry"].messages) == 2
    reason = pub.describe()["tf_last_error"]
    assert "'vio_odom' is dynamic" in reason and "Fix: set base_frame: camera_link" in reason, reason


def test_publish_unscaled_false_withholds_everything_not_in_metres():
    pub, settings = _camera_only(TransformBuffer(), publish_unscaled="false")
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    for k, T in enumerate(_camera_motion()):
        _publish(pub, Frame(T), Time(sec=5 + k), "cam", pubs, tf, settings)
    assert tf.messages == [] and all(not r.messages for r in pubs.values())
    assert pub.describe()["withheld_not_metres"] == 2 and pub.describe()["publish_unscaled"] == "false (false)"


def test_only_the_asked_messages_are_built_but_the_path_is_kept():
    pub = PoseOutputs(dict(SETTINGS, base_frame="", scale_source="none", odometry_frame="odom"), lambda: None, False)
    for k in range(3):
        T = np.eye(4)
        T[0, 3] = 0.1 * k
        out = pub.messages(Frame(T), Time(sec=10 + k), "cam", "odom", pose=False, odometry_msg=False, path_msg=k == 2,
                           tf=False)
        assert set(out) == ({"path"} if k == 2 else set())
    # optical x (right) is odom -y (REP 103 odom of a bare camera)
    assert len(out["path"].poses) == 3 and abs(out["path"].poses[2].pose.position.y + 0.2) < 1e-12
