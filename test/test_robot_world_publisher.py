"""The robot world publisher process over real DDS: the mount latched on /tf_static, the wheel odometry on
/tf (interpolated at image stamps as the node will look it up), images and camera_info of the robot's camera."""
import json
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import RELIABLE

from da3_ros.ros_io import image_to_numpy
from da3_ros.ros_io.tf_listener import TfListener
from da3_ros.synthetic.robot import SyntheticRobot

pytestmark = pytest.mark.ros  # DDS test: the world publisher and da3_node as their own processes over DDS

HERE = Path(__file__).resolve().parent


def test_world_publisher_sends_mount_odometry_and_images(ros_node, process_launcher, tmp_path):
    spec = tmp_path / "oracle.json"
    images = ros_node.subscribe("/camera/image", Image, RELIABLE)
    infos = ros_node.subscribe("/camera/camera_info", CameraInfo, RELIABLE)
    tf = TfListener(ros_node.node)
    proc = process_launcher.start_python([str(HERE / "robot_world_publisher.py"), "--spec", str(spec), "--frames", "8",
                                          "--width", "64", "--height", "48", "--garbage-frames", "3-4"],
                                         name="world")
    ros_node.spin_until(lambda: len(images) >= 8, 60, "8 images")
    ros_node.spin_for(0.3)
    assert proc.poll() is None, process_launcher.log(proc)
    robot = SyntheticRobot()
    seq = robot.sequence(64, 48)
    data = json.loads(spec.read_text())["oracle"]
    assert data["garbage_frames"] == [3, 4] and data["robot"] == {"fps": 10.0} and len(data["frames"]) == 8
    for k, msg in enumerate(images):
        assert msg.header.frame_id == "camera_optical"
        np.testing.assert_array_equal(image_to_numpy(msg), seq.render(k)[0])   # bit-exact: the oracle hashes it
    np.testing.assert_allclose(np.reshape(infos[0].k, (3, 3)), seq.K)
    np.testing.assert_allclose(tf.lookup("base_link", "camera_optical"), robot.T_base_cam, atol=1e-6)
    for msg, t in zip(images, robot.camera_stamps):
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        assert abs(stamp_ns * 1e-9 - (1000.0 + t)) < 1e-6
        # float32-free path (float64 messages); 1e-6 m covers the quaternion round trip
        np.testing.assert_allclose(tf.lookup("wheel_odom", "base_link", stamp_ns), robot.wheel_odometry.pose_at(t),
                                   atol=1e-6)
    assert tf.buffer.parent_of("base_link") == "wheel_odom" and tf.buffer.parent_of("camera_optical") == "camera_link"
    tf.destroy()
