"""TransformBuffer (tf2 BufferCore semantics, ROS-free): static and interpolated dynamic edges, chains
through a common ancestor, latest common time, extrapolation / unknown-frame / connectivity errors,
cache pruning, re-parenting, waiting with a timeout.

The value-semantics tests run against the built-in buffer and, where ``import tf2_ros`` works,
against tf2_ros.Buffer through the same interface (``Tf2RosLookup`` without a node); the tests of
error messages, re-parenting records and input checks are about the built-in one only.

Tolerances: every expected value is computed in float64 from the same inputs by a different route
(hand-composed products, closed-form rotations); 1e-12 covers a few rounding steps on unit-scale
numbers, identical on every x86 CPU (no SIMD-dependent reductions of long sums are involved).
"""
import threading
import time

import numpy as np
import pytest

from da3_ros.tf_tree.transform_buffer import (ConnectivityError, ExtrapolationError, TransformBuffer,
                                              TransformLookupError, UnknownFrameError)
from da3_ros.geometry.transforms import invert_transform, make_transform, rotation_from_axis_angle

S = 1_000_000_000  # ns per second
TOL = 1e-12


def _tf2_lookup(cache_time_s):
    from da3_ros.ros_io.tf_listener import Tf2RosLookup, tf2_ros_available

    ok, reason = tf2_ros_available()
    if not ok:
        pytest.skip(reason)
    return Tf2RosLookup(None, cache_time_s)


@pytest.fixture(params=["builtin", "tf2_ros"])
def make_buffer(request):
    """Factory ``cache_time_s -> buffer`` with set_transform / lookup / lookup_stamped / can_transform."""
    if request.param == "builtin":
        return TransformBuffer
    return _tf2_lookup


def rot_z(deg):
    return rotation_from_axis_angle([0.0, 0.0, np.radians(deg)])


def pose(axis_angle, t):
    return make_transform(rotation_from_axis_angle(axis_angle), t)


T_BASE_CAM = pose([0.1, -0.4, 0.2], [0.3, -0.05, 0.8])
T_CAM_OPT = pose([-np.pi / 2, 0.0, 0.0], [0.0, 0.0, 0.0]) @ pose([0.0, 0.0, -np.pi / 2], [0.0, 0.0, 0.0])
T_ODOM_ARM = pose([0.0, 0.3, 0.0], [1.0, 2.0, 0.5])


def test_static_chain_any_time_and_inverse(make_buffer):
    buf = make_buffer(10.0)
    buf.set_transform("base_link", "camera_link", 0, T_BASE_CAM, static=True)
    buf.set_transform("camera_link", "camera_optical", 0, T_CAM_OPT, static=True)
    expected = T_BASE_CAM @ T_CAM_OPT
    for stamp in (0, 1, 123 * S + 456):  # static transforms are valid at every time
        np.testing.assert_allclose(buf.lookup("base_link", "camera_optical", stamp), expected, atol=TOL)
        np.testing.assert_allclose(buf.lookup("camera_optical", "base_link", stamp), invert_transform(expected),
                                   atol=TOL)
    np.testing.assert_allclose(buf.lookup("camera_link", "camera_link", 5 * S), np.eye(4), atol=0)


def test_dynamic_interpolation_exact_at_midpoints(make_buffer):
    buf = make_buffer(10.0)
    buf.set_transform("odom", "base_link", 1 * S, make_transform(rot_z(0.0), [0.0, 0.0, 0.0]))
    buf.set_transform("odom", "base_link", 3 * S, make_transform(rot_z(90.0), [2.0, 4.0, -6.0]))
    # rotation about a fixed axis: slerp is linear in the angle, translation linear in time
    for stamp, deg, t in ((2 * S, 45.0, [1.0, 2.0, -3.0]), (S + S // 2, 22.5, [0.5, 1.0, -1.5]),
                          (S + S // 4 * 7, 78.75, [1.75, 3.5, -5.25])):
        np.testing.assert_allclose(buf.lookup("odom", "base_link", stamp), make_transform(rot_z(deg), t), atol=TOL)
    np.testing.assert_allclose(buf.lookup("odom", "base_link", 3 * S), make_transform(rot_z(90.0), [2, 4, -6]),
                               atol=TOL)


def _tree(buf, stamps):
    """map -> odom (dynamic) -> base_link (dynamic) -> camera_link (static); odom -> arm (static)."""
    truth = {}
    for k, stamp in enumerate(stamps):
        T_map_odom = pose([0.0, 0.0, 0.05 * k], [0.1 * k, 0.0, 0.0])
        T_odom_base = pose([0.02 * k, -0.03 * k, 0.4 + 0.1 * k], [1.0 + k, 0.5 * k, 0.0])
        buf.set_transform("map", "odom", stamp, T_map_odom)
        buf.set_transform("odom", "base_link", stamp, T_odom_base)
        truth[stamp] = (T_map_odom, T_odom_base)
    buf.set_transform("base_link", "camera_link", 0, T_BASE_CAM, static=True)
    buf.set_transform("odom", "arm", 0, T_ODOM_ARM, static=True)
    return truth


def test_chain_through_common_ancestor(make_buffer):
    buf = make_buffer(10.0)
    stamps = [10 * S + k * S // 10 for k in range(5)]
    truth = _tree(buf, stamps)
    for stamp in stamps:
        T_map_odom, T_odom_base = truth[stamp]
        # arm and camera meet at odom: T_arm_cam = inv(T_odom_arm) @ T_odom_base @ T_base_cam
        expected = invert_transform(T_ODOM_ARM) @ T_odom_base @ T_BASE_CAM
        np.testing.assert_allclose(buf.lookup("arm", "camera_link", stamp), expected, atol=TOL)
        np.testing.assert_allclose(buf.lookup("camera_link", "arm", stamp), invert_transform(expected), atol=TOL)
        np.testing.assert_allclose(buf.lookup("map", "camera_link", stamp), T_map_odom @ T_odom_base @ T_BASE_CAM,
                                   atol=TOL)


def test_time_zero_is_latest_common_time(make_buffer):
    buf = make_buffer(10.0)
    for k in range(6):
        buf.set_transform("map", "odom", 100 * S + k * S, pose([0, 0, 0.1 * k], [k, 0, 0]))
    for k in range(4):  # base_link data ends 2 s before odom's
        buf.set_transform("odom", "base_link", 100 * S + k * S, pose([0.1 * k, 0, 0], [0, k, 0]))
    buf.set_transform("base_link", "camera_link", 0, T_BASE_CAM, static=True)
    T, used = buf.lookup_stamped("map", "camera_link", 0)
    assert used == 103 * S
    np.testing.assert_allclose(T, buf.lookup("map", "camera_link", 103 * S), atol=TOL)
    # a path with only odom's edge: its own newest sample
    assert buf.lookup_stamped("map", "odom", 0)[1] == 105 * S
    np.testing.assert_allclose(buf.lookup("map", "odom", 0), pose([0, 0, 0.5], [5, 0, 0]), atol=TOL)


def test_errors_are_typed(make_buffer):
    buf = make_buffer(10.0)
    buf.set_transform("odom", "base_link", 5 * S, np.eye(4))
    buf.set_transform("odom", "base_link", 6 * S, np.eye(4))
    buf.set_transform("map", "landmark", 0, np.eye(4), static=True)
    with pytest.raises(ExtrapolationError):
        buf.lookup("odom", "base_link", 7 * S)
    with pytest.raises(ExtrapolationError):
        buf.lookup("odom", "base_link", 4 * S)
    with pytest.raises(UnknownFrameError):
        buf.lookup("odom", "nowhere", 0)
    with pytest.raises(ConnectivityError):
        buf.lookup("odom", "landmark", 0)
    assert not buf.can_transform("odom", "base_link", 7 * S)
    assert buf.can_transform("odom", "base_link", 5 * S + 1)
    for exc_type in (ExtrapolationError, UnknownFrameError, ConnectivityError):
        assert issubclass(exc_type, TransformLookupError) and issubclass(exc_type, LookupError)


def test_cache_pruning(make_buffer):
    buf = make_buffer(1.0)
    for k in range(7):  # 0 .. 3 s every 0.5 s; a 1 s cache keeps [2, 3] s (tf2, pruning before it inserts: [1.5, 3])
        buf.set_transform("odom", "base_link", k * S // 2, pose([0, 0, 0.1 * k], [k, 0, 0]))
    assert buf.can_transform("odom", "base_link", 2 * S)
    assert not buf.can_transform("odom", "base_link", S)
    np.testing.assert_allclose(buf.lookup("odom", "base_link", 2 * S), pose([0, 0, 0.4], [4, 0, 0]), atol=TOL)


# ---------------------------------------------------------------------------- built-in only
def test_extrapolation_message_names_frames_and_times():
    buf = TransformBuffer()
    buf.set_transform("odom", "base_link", 5 * S, np.eye(4))
    buf.set_transform("odom", "base_link", 6 * S + S // 4, np.eye(4))
    buf.set_transform("map", "odom", 4 * S, np.eye(4))
    buf.set_transform("map", "odom", 9 * S, np.eye(4))
    buf.set_transform("base_link", "camera", 0, T_BASE_CAM, static=True)
    with pytest.raises(ExtrapolationError) as info:
        buf.lookup("map", "camera", 7 * S + S // 2)
    err = info.value
    msg = str(err)
    for text in ("'camera'", "'map'", "7.500000000 s", "future by 1.250000000 s", "6.250000000 s",
                 "odom -> base_link [5.000000000 s .. 6.250000000 s]", "map -> odom [4.000000000 s .. 9.000000000 s]"):
        assert text in msg, (text, msg)
    assert err.stamp_ns == 7 * S + S // 2 and (err.target_frame, err.source_frame) == ("map", "camera")
    assert [(e.parent, e.child, e.earliest_ns, e.latest_ns) for e in err.failing] == [
        ("odom", "base_link", 5 * S, 6 * S + S // 4)]
    assert len(err.edges) == 2
    with pytest.raises(ExtrapolationError, match=r"past by 1\.000000000 s, earliest data at 5\.000000000 s"):
        buf.lookup("odom", "base_link", 4 * S)
    buf.set_transform("odom", "lonely", 3 * S, np.eye(4))
    with pytest.raises(ExtrapolationError, match=r"only 3\.000000000 s is in the buffer"):
        buf.lookup("odom", "lonely", 3 * S + 1)
    np.testing.assert_array_equal(buf.lookup("odom", "lonely", 3 * S), np.eye(4))


def test_unknown_and_disconnected_messages():
    buf = TransformBuffer()
    buf.set_transform("odom", "base_link", S, np.eye(4))
    buf.set_transform("map", "landmark", 0, np.eye(4), static=True)
    with pytest.raises(UnknownFrameError, match=r"frame 'cam' passed as target_frame .* known frames: base_link, "
                                                r"landmark, map, odom") as info:
        buf.lookup("cam", "base_link", 2 * S)
    assert info.value.frame == "cam"
    with pytest.raises(ConnectivityError, match=r"'landmark' and 'base_link' .*root of 'landmark': 'map', root of "
                                                r"'base_link': 'odom'"):
        buf.lookup("landmark", "base_link", S)
    with pytest.raises(UnknownFrameError):  # even the identity needs a known frame, as in tf2
        buf.lookup("ghost", "ghost", 0)


def test_pruning_drops_late_old_samples_and_keeps_out_of_order_ones():
    buf = TransformBuffer(cache_time_s=1.0)
    assert buf.set_transform("odom", "base_link", 10 * S, pose([0, 0, 0], [0, 0, 0]))
    assert buf.set_transform("odom", "base_link", 12 * S, pose([0, 0, 0], [2, 0, 0]))  # prunes 10 s
    assert not buf.can_transform("odom", "base_link", 11 * S)
    assert buf.set_transform("odom", "base_link", 11 * S, pose([0, 0, 0], [1, 0, 0]))  # exactly 1 s old: kept
    assert not buf.can_transform("odom", "base_link", 11 * S - 1)
    assert not buf.set_transform("odom", "base_link", 10 * S, np.eye(4))  # older than the 1 s window
    assert buf.set_transform("odom", "base_link", 11 * S + S // 2, pose([0, 0, 0], [7, 0, 0]))  # late, in window
    np.testing.assert_allclose(buf.lookup("odom", "base_link", 11 * S + 3 * S // 4)[:3, 3], [4.5, 0, 0], atol=TOL)
    np.testing.assert_allclose(buf.lookup("odom", "base_link", 11 * S + S // 4)[:3, 3], [4.0, 0, 0], atol=TOL)
    assert not buf.set_transform("odom", "base_link", 12 * S, np.eye(4))  # repeated stamp: first one kept
    np.testing.assert_allclose(buf.lookup("odom", "base_link", 12 * S)[:3, 3], [2, 0, 0], atol=0)


def test_reparenting_replaces_edge_and_is_recorded():
    buf = TransformBuffer()
    buf.set_transform("base_link", "camera", 1 * S, np.eye(4), authority="driver_a")
    buf.set_transform("base_link", "camera", 2 * S, np.eye(4), authority="driver_a")
    assert buf.take_reparent_events() == []
    buf.set_transform("mount", "camera", 3 * S, T_BASE_CAM, authority="driver_b")
    assert buf.parent_of("camera") == "mount"
    events = buf.take_reparent_events()
    assert [(e.child, e.old_parent, e.new_parent, e.authority) for e in events] == [
        ("camera", "base_link", "mount", "driver_b")]
    assert "'camera'" in events[0].describe() and "'mount'" in events[0].describe()
    assert buf.take_reparent_events() == []  # taken once
    with pytest.raises(ConnectivityError):  # the old edge is gone
        buf.lookup("base_link", "camera", 3 * S)
    with pytest.raises(ExtrapolationError):  # and so are its samples
        buf.lookup("mount", "camera", 2 * S)
    buf.set_transform("mount", "camera", 0, T_BASE_CAM, static=True)  # dynamic -> static is a replacement too
    assert [(e.old_static, e.new_static) for e in buf.take_reparent_events()] == [(False, True)]
    np.testing.assert_allclose(buf.lookup("mount", "camera", 2 * S), T_BASE_CAM, atol=0)


def test_bad_input_is_rejected_with_a_clear_error():
    buf = TransformBuffer()
    with pytest.raises(ValueError, match="NaN"):
        buf.set_transform("a", "b", S, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="not a rigid"):
        buf.set_transform("a", "b", S, make_transform(np.eye(3), [0, 0, 0], s=2.0))
    with pytest.raises(ValueError, match="parent frame == child frame"):
        buf.set_transform("a", "/a", S, np.eye(4))
    with pytest.raises(ValueError, match="empty"):
        buf.set_transform("", "b", S, np.eye(4))
    with pytest.raises(ValueError, match="cache_time_s"):
        TransformBuffer(cache_time_s=0.0)
    assert buf.frames() == []  # nothing was stored
    buf.set_transform("/odom", "base_link", S, np.eye(4))  # a leading slash is dropped, as in tf2
    assert buf.frames() == ["base_link", "odom"] and buf.can_transform("odom", "/base_link", S)


def test_loop_in_tree_is_a_connectivity_error():
    buf = TransformBuffer()
    buf.set_transform("a", "b", 0, np.eye(4), static=True)
    buf.set_transform("b", "a", 0, np.eye(4), static=True)
    buf.set_transform("c", "d", 0, np.eye(4), static=True)
    with pytest.raises(ConnectivityError, match="loop"):
        buf.lookup("d", "b", 0)


def test_lookup_waits_for_data_up_to_timeout():
    buf = TransformBuffer()
    buf.set_transform("odom", "base_link", 1 * S, np.eye(4))

    def feed():
        time.sleep(0.2)
        buf.set_transform("odom", "base_link", 2 * S, make_transform(np.eye(3), [2.0, 0, 0]))

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        T = buf.lookup("odom", "base_link", 2 * S, timeout_s=10.0)
    finally:
        feeder.join()
    np.testing.assert_allclose(T[:3, 3], [2.0, 0, 0], atol=0)
    start = time.monotonic()
    with pytest.raises(ExtrapolationError, match="future"):
        buf.lookup("odom", "base_link", 3 * S, timeout_s=0.15)
    assert time.monotonic() - start >= 0.15
    assert not buf.can_transform("odom", "base_link", 3 * S, timeout_s=0.05)
