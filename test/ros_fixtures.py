"""Deterministic ROS messages shared by the DDS round-trip test and its publisher process."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from da3_ros.ros_io import build_pointcloud2, numpy_to_image

FIXTURE_STAMP = Time(sec=1_700_000_000, nanosec=123_456_789)


def fixture_image():
    """640x480 rgb8 with 8 bytes of row padding, seeded content."""
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, arr.shape
    return numpy_to_image(arr, "rgb8", header=Header(stamp=FIXTURE_STAMP, frame_id="cam_optical"), row_padding=8)


def fixture_cloud():
    """Organized 480x640 xyz+rgb cloud with ~10 % NaN points, seeded content."""
    rng = np.random.default_rng(11)
    xyz = rng.normal(size=(480, 640, 3)).astype(np.float32)
    xyz[rng.random((480, 640)) < 0.1] = np.nan
    rgb = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    return build_pointcloud2(xyz, rgb, header=Header(stamp=FIXTURE_STAMP, frame_id="cam_optical"))
