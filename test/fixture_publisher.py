"""Publisher process for the DDS round-trip test: publishes the fixture Image and PointCloud2 (RELIABLE)
at 5 Hz until interrupted."""
import sys
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_fixtures import fixture_cloud, fixture_image  # noqa: E402


def main():
    rclpy.init()
    node = rclpy.create_node("da3_fixture_publisher")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "fixture/image", qos)
    cloud_pub = node.create_publisher(PointCloud2, "fixture/points", qos)
    image, cloud = fixture_image(), fixture_cloud()
    # the round-trip test compares what it receives with these fixtures: publish only well-formed ones
    assert len(image.data) == image.step * image.height, "fixture Image: data size != step * height"
    assert len(cloud.data) == cloud.row_step * cloud.height, "fixture PointCloud2: data size != row_step * height"

    def tick():
        image_pub.publish(image)
        cloud_pub.publish(cloud)

    node.create_timer(0.2, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
