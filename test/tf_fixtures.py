"""Known TF tree for the DDS listener tests, shared by the publisher process and the test.

/tf_static: base_link -> camera_link -> camera_optical. /tf: odom -> base_link at 50 Hz with stamps
``BASE_NS + k * PERIOD_NS``, moving with constant linear and angular velocity about a fixed axis, so
that linear translation + slerp interpolation reproduce ``T_odom_base(t)`` exactly between samples.
"""
import numpy as np

from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle

BASE_NS = 1_000 * 1_000_000_000  # stamps start at 1000 s (not wall time: exact, reproducible values)
PERIOD_NS = 20_000_000  # 50 Hz
AXIS = np.array([0.2, -0.3, 0.9]) / np.linalg.norm([0.2, -0.3, 0.9])
RATE_RAD_S = 0.5
VELOCITY = np.array([0.4, -0.1, 0.05])
START = np.array([1.0, 2.0, 0.3])
START_ROTATION = rotation_from_axis_angle([0.1, 0.2, -0.3])

T_BASE_CAM = make_transform(rotation_from_axis_angle([0.05, -0.2, 0.1]), [0.25, -0.04, 0.9])
T_CAM_OPT = make_transform(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), [0.0, 0.0, 0.0])


def T_odom_base(stamp_ns: int) -> np.ndarray:
    t = (int(stamp_ns) - BASE_NS) * 1e-9
    T = make_transform(rotation_from_axis_angle(AXIS * RATE_RAD_S * t) @ START_ROTATION, START + VELOCITY * t)
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12), "the fixture odometry must be rigid"
    return T
