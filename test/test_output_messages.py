"""The node's message builders (``da3_ros.node.output_messages``): only the outputs asked for are built, and the
path (node state) stays right when its message is not built. Real messages, no DDS needed."""
import numpy as np

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.geometry.transforms import rotation_from_axis_angle
from da3_ros.node.output_messages import ODOMETRY_OUTPUTS, camera_frame_messages, map_message, odometry_messages
from da3_ros.pipeline.window_outcome import CameraOutput, WindowOutcome
from da3_ros.tracking.tracking_outcome import TrackingOutcome
from da3_ros.node.pose_outputs import PoseOutputs
from da3_ros.ros_io import image_to_numpy, pointcloud2_xyz_rgb, transform_to_matrix


def _frame(T=None, reset=False):
    rng = np.random.default_rng(0)
    depth = (1.0 + rng.random((6, 8))).astype(np.float32)
    points = rng.random((3, 4, 3)).astype(np.float32)
    camera = CameraOutput(stamp_ns=0, depth=depth, confidence=np.ones_like(depth), camera_intrinsics=PinholeCamera(
        8, 6, np.array([[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]])), T_odom_cam=T, points=points,
        point_colours=np.zeros((3, 4, 3), np.uint8))
    return WindowOutcome(cameras=(camera,), tracking=TrackingOutcome.ALIGNED if T is not None
                         else TrackingOutcome.REJECTED, reset=reset)


def test_camera_frame_messages_only_the_asked_ones():
    f = _frame().reference
    header = Header(frame_id="cam")
    assert set(camera_frame_messages(f, header)) == {"depth", "depth_info", "confidence", "points"}
    assert camera_frame_messages(f, header, depth=False, confidence=False, points=False) == {}
    only_info = camera_frame_messages(f, header, depth=False, depth_info=True, confidence=False, points=False)
    assert set(only_info) == {"depth_info"} and only_info["depth_info"].k[0] == 5.0
    depth_only = camera_frame_messages(f, header, depth_info=False, confidence=False, points=False)
    np.testing.assert_array_equal(image_to_numpy(depth_only["depth"]), f.depth)


def test_odometry_messages_keep_the_path_when_nothing_is_built():
    stamp = Time(sec=7, nanosec=5)
    T = np.eye(4)
    T[:3, :3] = rotation_from_axis_angle([0.0, 0.3, 0.0])
    T[:3, 3] = (1.0, 2.0, 3.0)
    # a bare camera (base_frame empty, no scale source): the pose outputs of the camera, as before issue 13
    path = PoseOutputs(dict(odom_frame="odom", base_frame="", path_max_length=10), lambda: None, scale_expected=False)
    off = dict(pose=False, odometry_msg=False, path_msg=False, tf=False)
    for _ in range(3):
        assert odometry_messages(_frame(T), stamp, "odom", "cam", path, **off) == {}
    assert len(path) == 3   # poses kept while nobody subscribes: switching the path on shows all of them
    assert odometry_messages(_frame(None), stamp, "odom", "cam", path, **off) == {} and len(path) == 3

    cloud = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)
    out = odometry_messages(_frame(T), stamp, "odom", "cam", path)
    assert set(out) == set(ODOMETRY_OUTPUTS)
    assert len(out["path"].poses) == 4 and out["path"].poses[-1].pose == out["pose"].pose
    assert out["pose"].header.frame_id == "odom" and out["pose"].header.stamp == stamp
    assert (out["odometry"].header.frame_id, out["odometry"].child_frame_id) == ("odom", "cam")
    assert (out["tf"].header.frame_id, out["tf"].child_frame_id) == ("odom", "cam")
    # odom of a bare camera: its first pose in REP 103 axes (x forward = optical z, z up = -optical y)
    from da3_ros.node.robot_frames import T_BODY_OPTICAL
    np.testing.assert_allclose(transform_to_matrix(out["tf"].transform), T_BODY_OPTICAL @ T, atol=1e-12)
    assert out["odometry"].pose.pose.position.x == 3.0 and out["odometry"].pose.pose.position.z == -2.0
    map_msg = map_message(cloud, np.zeros(cloud.shape, np.uint8), stamp, "odom")
    assert map_msg.header.frame_id == "odom" and map_msg.header.stamp == stamp
    np.testing.assert_array_equal(pointcloud2_xyz_rgb(map_msg)[0].reshape(-1, 3), cloud)

    # a reset before this frame restarts the path even when the path is not built
    only_tf = odometry_messages(_frame(T, reset=True), stamp, "odom", "cam", path,
                                **{**off, "tf": True})
    assert set(only_tf) == {"tf"} and len(path) == 1
