"""PoseOutputs' publishing convention on real ROS messages (no DDS):
tracked -> pose/odometry/path/TF; scale unknown -> odometry only (position variance 1e6); lost -> nothing."""
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
        if lost:
            assert sample is None and new == ({"pose": 0, "odometry": 0, "path": 0}, 0)
        elif k < 2:   # scale unknown: odometry only, positions not to be fused, orientation valid
            assert new == ({"pose": 0, "odometry": 1, "path": 0}, 0)
            cov = np.reshape(pubs["odometry"].messages[-1].pose.covariance, (6, 6))
            assert np.all(np.diag(cov)[:3] == UNKNOWN_VARIANCE) and np.all(np.diag(cov)[3:] < 1e-2)
        else:
            assert new == ({"pose": 1, "odometry": 1, "path": 1}, 1)
            odo = pubs["odometry"].messages[-1]
            assert (odo.header.frame_id, odo.child_frame_id) == ("odom", "base_link")
            edge = tf.messages[-1]
            assert (edge.header.frame_id, edge.child_frame_id) == ("odom", "wheel_odom")
            # odom -> wheel_odom -> base_link (wheel odometry at the stamp) = the published base pose
            T_edge = transform_to_matrix(edge.transform)
            np.testing.assert_allclose(T_edge @ T_wheel, transform_to_matrix_pose(odo.pose.pose), atol=1e-6)
            # the base pose is the truth relative to the first frame (perfect visual odometry, exact scale)
            gt = ROBOT.T_odom_base([0.0, t])
            np.testing.assert_allclose(sample.T_odom_base, invert_transform(gt[0]) @ gt[1], atol=1e-9)
            # body twist from consecutive poses: 0.3 m/s forward (the lost frame only lengthens dt)
            assert sample.twist_known and abs(odo.twist.twist.linear.x - 0.3) < 0.02
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


def test_bare_camera_keeps_the_former_outputs():
    settings = dict(SETTINGS, base_frame="", scale_source="none", odometry_frame="odom")
    pub = PoseOutputs(settings, lambda: (_ for _ in ()).throw(AssertionError("no TF needed")), False)
    pubs = {name: Recorder() for name in ("pose", "odometry", "path")}
    tf = Recorder()
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.3]
    _publish(pub, Frame(T), Time(sec=5), "cam", pubs, tf, settings)
    assert (tf.messages[0].header.frame_id, tf.messages[0].child_frame_id) == ("odom", "cam")
    assert pubs["odometry"].messages[0].child_frame_id == "cam"
    np.testing.assert_allclose(transform_to_matrix(tf.messages[0].transform), T, atol=1e-12)


def test_only_the_asked_messages_are_built_but_the_path_is_kept():
    pub = PoseOutputs(dict(SETTINGS, base_frame="", scale_source="none", odometry_frame="odom"), lambda: None, False)
    for k in range(3):
        T = np.eye(4)
        T[0, 3] = 0.1 * k
        out = pub.messages(Frame(T), Time(sec=10 + k), "cam", "odom", pose=False, odometry_msg=False, path_msg=k == 2,
                           tf=False)
        assert set(out) == ({"path"} if k == 2 else set())
    assert len(out["path"].poses) == 3 and out["path"].poses[2].pose.position.x == 0.2
