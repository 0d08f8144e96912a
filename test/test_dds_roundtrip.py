"""Two processes over real DDS: a publisher subprocess sends an Image (padded rows) and an
organized PointCloud2 with NaNs; this test receives them and checks they are bit-exact."""
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image, PointCloud2

from ros_fixtures import fixture_cloud, fixture_image

from da3_ros.ros_io import image_to_numpy, pointcloud2_xyz_rgb

pytestmark = pytest.mark.ros  # DDS test: a publisher process and this process over DDS

HERE = Path(__file__).resolve().parent


def test_image_and_cloud_round_trip_between_processes(ros_node, process_launcher):
    images = ros_node.subscribe("fixture/image", Image)
    clouds = ros_node.subscribe("fixture/points", PointCloud2)
    proc = process_launcher.start_python([str(HERE / "fixture_publisher.py")], name="publisher")
    ros_node.spin_until(lambda: images and clouds or proc.poll() is not None, 30.0, "fixture messages")
    assert proc.poll() is None, process_launcher.log(proc)

    expected_image, expected_cloud = fixture_image(), fixture_cloud()
    got = images[0]
    assert (got.height, got.width, got.step, got.encoding) == (480, 640, 640 * 3 + 8, "rgb8")
    assert got.header.frame_id == "cam_optical" and got.header.stamp.nanosec == 123_456_789
    assert bytes(got.data) == bytes(expected_image.data)
    np.testing.assert_array_equal(image_to_numpy(got), image_to_numpy(expected_image))

    cloud = clouds[0]
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step, cloud.is_dense) == (
        480, 640, 16, 16 * 640, False)
    assert bytes(cloud.data) == bytes(expected_cloud.data)
    xyz, rgb = pointcloud2_xyz_rgb(cloud)
    xyz_e, rgb_e = pointcloud2_xyz_rgb(expected_cloud)
    np.testing.assert_array_equal(np.isnan(xyz), np.isnan(xyz_e))
    np.testing.assert_array_equal(rgb, rgb_e)
