"""TFMessage on /tf and latched /tf_static (late subscribers get the static transforms)."""
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from tf2_msgs.msg import TFMessage

from da3_ros.ros_io import transform_stamped
from da3_ros.ros_io.tf_publisher import TF_QOS, TF_STATIC_QOS, TfBroadcaster

pytestmark = pytest.mark.ros  # DDS test: an rclpy node publishing /tf over DDS


def test_tf_and_latched_tf_static(ros_node):
    broadcaster = TfBroadcaster(ros_node.node)
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.3]
    broadcaster.send_static([transform_stamped(T, Time(sec=1), "base_link", "camera_link")])
    broadcaster.send_static([transform_stamped(np.eye(4), Time(sec=1), "camera_link", "camera_optical")])
    ros_node.spin_for(0.2)
    # subscribe only now: TRANSIENT_LOCAL must still deliver the latched static transforms
    static = ros_node.subscribe("/tf_static", TFMessage, TF_STATIC_QOS)
    dynamic = ros_node.subscribe("/tf", TFMessage, TF_QOS)
    ros_node.spin_until(lambda: static, 10.0, "latched /tf_static")
    children = sorted(t.child_frame_id for t in static[-1].transforms)
    assert children == ["camera_link", "camera_optical"]
    assert 0.3 in (static[-1].transforms[0].transform.translation.z, static[-1].transforms[1].transform.translation.z)
    ros_node.spin_until(lambda: broadcaster._pub.get_subscription_count() > 0, 10.0, "tf subscriber")
    broadcaster.send([transform_stamped(T, Time(sec=2), "odom", "camera_optical")])
    ros_node.spin_until(lambda: dynamic, 10.0, "/tf")
    assert dynamic[0].transforms[0].header.frame_id == "odom"
    assert dynamic[0].transforms[0].header.stamp.sec == 2
