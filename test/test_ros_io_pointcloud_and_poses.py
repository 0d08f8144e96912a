"""PointCloud2 builder/reader and pose/odometry/path messages."""
import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time

from da3_ros.ros_io import (BoundedPath, MessageConversionError, build_pointcloud2, matrix_to_pose, ns_to_stamp,
                            odometry, pointcloud2_xyz_rgb, pose_stamped, pose_to_matrix, read_pointcloud2, stamp_to_ns,
                            transform_stamped)
from da3_ros.geometry.transforms import rotation_to_quaternion_xyzw


def test_organized_cloud_with_nans_round_trips():
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(480, 640, 3)).astype(np.float32)
    invalid = rng.random((480, 640)) < 0.2
    xyz[invalid] = np.nan
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg = build_pointcloud2(xyz, rgb)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (480, 640, 16, 16 * 640)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1)]
    assert msg.is_dense is False and len(msg.data) == 480 * 640 * 16
    xyz2, rgb2 = pointcloud2_xyz_rgb(msg)
    np.testing.assert_array_equal(np.isnan(xyz2[..., 0]), invalid)
    np.testing.assert_array_equal(xyz2[~invalid], xyz[~invalid])
    np.testing.assert_array_equal(rgb2, rgb)


def test_unorganized_dense_cloud_without_colour():
    xyz = np.arange(30, dtype=np.float32).reshape(10, 3)
    msg = build_pointcloud2(xyz)
    assert (msg.height, msg.width, msg.point_step, msg.is_dense) == (1, 10, 12, True)
    out, rgb = pointcloud2_xyz_rgb(msg)
    assert rgb is None
    np.testing.assert_array_equal(out[0], xyz)


def test_packed_rgb_bit_pattern():
    msg = build_pointcloud2(np.zeros((1, 3), np.float32), np.array([[0x12, 0x34, 0x56]], np.uint8))
    assert read_pointcloud2(msg)["rgb"].view(np.uint32)[0, 0] == 0x00123456


def test_reader_honours_padding_and_big_endian():
    # a hand-made big-endian cloud with point_step 20 (4 bytes of padding) and row padding
    pts = np.array([[1.5, -2.0, 3.25], [4.0, 5.0, -6.5]], dtype=">f4")
    point = np.zeros((2, 20), np.uint8)
    point[:, :12] = pts.view(np.uint8).reshape(2, 12)
    rows = np.zeros((1, 48), np.uint8)
    rows[0, :40] = point.ravel()
    msg = build_pointcloud2(np.zeros((2, 3), np.float32))
    msg.is_bigendian, msg.point_step, msg.row_step = True, 20, 48
    msg.data = array.array("B", rows.tobytes())
    xyz, _ = pointcloud2_xyz_rgb(msg)
    np.testing.assert_array_equal(xyz[0], pts.astype(np.float32))


def test_reader_rejects_truncated_clouds():
    msg = build_pointcloud2(np.zeros((4, 3), np.float32))
    msg.data = array.array("B", bytes(msg.data)[:-1])
    with pytest.raises(MessageConversionError,
                       match="data size mismatch: row_step 48 \\* height 1 = 48 bytes expected, got 47"):
        read_pointcloud2(msg)


def test_builder_rejects_bad_shapes():
    with pytest.raises(MessageConversionError, match=r"points must be \(H, W, 3\) or \(N, 3\)"):
        build_pointcloud2(np.zeros((4, 2), np.float32))
    with pytest.raises(MessageConversionError, match="rgb must be uint8"):
        build_pointcloud2(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))


def _rot(axis, angle):
    c, s = np.cos(angle), np.sin(angle)
    R = np.eye(3)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


@pytest.mark.parametrize("axis,angle", [(0, 0.3), (1, -2.9), (2, np.pi), (0, np.pi - 1e-9)])
def test_quaternion_matches_axis_angle(axis, angle):
    q = rotation_to_quaternion_xyzw(_rot(axis, angle))
    expected = np.zeros(4)
    expected[axis] = np.sin(angle / 2)
    expected[3] = np.cos(angle / 2)
    if expected[3] < 0:
        expected = -expected
    np.testing.assert_allclose(q, expected, atol=1e-9)


def test_pose_transform_and_odometry_messages():
    T = np.eye(4)
    T[:3, :3] = _rot(2, np.pi / 2)
    T[:3, 3] = [1.0, 2.0, 3.0]
    stamp = Time(sec=5, nanosec=7)
    p = pose_stamped(T, stamp, "odom")
    assert p.header.frame_id == "odom" and p.header.stamp.sec == 5
    assert (p.pose.position.x, p.pose.position.y, p.pose.position.z) == (1.0, 2.0, 3.0)
    assert p.pose.orientation.z == pytest.approx(np.sqrt(0.5)) and p.pose.orientation.w == pytest.approx(np.sqrt(0.5))
    t = transform_stamped(T, stamp, "odom", "camera_optical")
    assert t.child_frame_id == "camera_optical" and t.transform.translation.z == 3.0
    o = odometry(T, stamp, "odom", "camera_optical")
    assert o.child_frame_id == "camera_optical" and o.pose.pose.position.y == 2.0 and o.pose.covariance[0] == -1.0
    with pytest.raises(MessageConversionError, match="NaN"):
        pose_stamped(np.full((4, 4), np.nan), stamp, "odom")


def test_bounded_path_keeps_the_newest_poses():
    path = BoundedPath("odom", max_length=3)
    for i in range(5):
        T = np.eye(4)
        T[0, 3] = i
        path.append(pose_stamped(T, Time(sec=i), "odom"))
    msg = path.message(Time(sec=9))
    assert [p.pose.position.x for p in msg.poses] == [2.0, 3.0, 4.0]
    assert msg.header.frame_id == "odom"


def test_pose_round_trip_and_rejections():
    """pose_to_matrix inverts matrix_to_pose (float64 rounding only) and refuses what tf2 refuses."""
    from da3_ros.geometry.transforms import rotation_from_axis_angle

    T = np.eye(4)
    T[:3, :3] = rotation_from_axis_angle([0.3, -1.1, 0.7])
    T[:3, 3] = [1.5, -2.0, 0.25]
    np.testing.assert_allclose(pose_to_matrix(matrix_to_pose(T)), T, atol=1e-14)
    pose = matrix_to_pose(T)
    pose.orientation.w = 3.0
    with pytest.raises(MessageConversionError, match="pose rotation is not a unit quaternion"):
        pose_to_matrix(pose)
    pose.position.x = float("nan")
    with pytest.raises(MessageConversionError, match="pose contains NaN"):
        pose_to_matrix(pose)


def test_stamp_and_nanoseconds_convert_both_ways_exactly():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, 2**31 * 1_000_000_000 - 1):
        stamp = ns_to_stamp(ns)
        assert isinstance(stamp, Time) and 0 <= stamp.nanosec < 1_000_000_000
        assert stamp_to_ns(stamp) == ns
    assert (ns_to_stamp(1_700_000_000_123_456_789).sec, ns_to_stamp(1_700_000_000_123_456_789).nanosec) == \
        (1_700_000_000, 123_456_789)
    assert stamp_to_ns(Time(sec=5, nanosec=7)) == 5_000_000_007
