"""TF input over real DDS: a publisher process (tf_fixture_publisher.py) latches /tf_static before the
listener exists and streams /tf at 50 Hz; the listener in this process must reproduce the published
transforms. Parametrised over the implementations create_transform_lookup offers (built-in always,
tf2_ros where it imports).

Tolerance 1e-9: the transforms travel as float64 (translation + quaternion); the round trip matrix ->
quaternion -> matrix and a 3-edge product cost ~1e-15, and slerp reproduces a constant-rate rotation
about a fixed axis exactly up to rounding, so 1e-9 leaves a wide margin on every CPU while still
catching any real error (a wrong edge, order or interpolation is off by >= 1e-3 here).
"""
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from tf2_msgs.msg import TFMessage

import tf_fixtures as fx
from da3_ros.tf_tree.transform_buffer import ExtrapolationError, UnknownFrameError, format_stamp
from da3_ros.geometry.transforms import invert_transform
from da3_ros.ros_io import MessageConversionError, stamp_to_ns, transform_stamped, transform_to_matrix
from da3_ros.ros_io.tf_listener import TfListener, create_transform_lookup, tf2_ros_available
from da3_ros.ros_io.tf_publisher import TF_QOS

pytestmark = pytest.mark.ros  # DDS test: a TF publisher process and an rclpy listener over DDS

PUBLISHER = Path(__file__).resolve().parent / "tf_fixture_publisher.py"
TOL = 1e-9


@pytest.fixture(params=["builtin", "tf2_ros"])
def implementation(request):
    if request.param == "tf2_ros":
        ok, reason = tf2_ros_available()
        if not ok:
            pytest.skip(reason)
    return request.param


def _wait_for_log(launcher, proc, text, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in launcher.log(proc):
            return
        assert proc.poll() is None, f"publisher exited early:\n{launcher.log(proc)}"
        time.sleep(0.05)
    raise TimeoutError(f"publisher did not print {text!r}:\n{launcher.log(proc)}")


def test_lookups_match_published_transforms(implementation, ros_node, process_launcher):
    proc = process_launcher.start_python([str(PUBLISHER)], name="tf_publisher")
    _wait_for_log(process_launcher, proc, "STATIC_SENT")
    time.sleep(0.3)  # /tf_static was published once, before the listener exists: only TRANSIENT_LOCAL delivers it
    tf = create_transform_lookup(ros_node.node, cache_time_s=10.0, implementation=implementation)
    assert tf.implementation == implementation
    ros_node.spin_until(lambda: tf.can_transform("base_link", "camera_optical", 0), 20.0, "latched /tf_static")
    np.testing.assert_allclose(tf.lookup("base_link", "camera_optical", 0), fx.T_BASE_CAM @ fx.T_CAM_OPT, atol=TOL)
    ros_node.spin_until(lambda: tf.can_transform("odom", "camera_optical", 0), 20.0, "/tf odom -> base_link")
    ros_node.spin_for(0.3)  # a few more samples: 50 Hz

    T, used = tf.lookup_stamped("odom", "camera_optical", 0)
    assert used > fx.BASE_NS and (used - fx.BASE_NS) % fx.PERIOD_NS == 0, used  # the newest published stamp
    expected = fx.T_odom_base(used) @ fx.T_BASE_CAM @ fx.T_CAM_OPT
    np.testing.assert_allclose(T, expected, atol=TOL)
    np.testing.assert_allclose(tf.lookup("camera_optical", "odom", used), invert_transform(expected), atol=TOL)
    # between two samples (slerp + linear translation reproduce the constant-rate motion)
    mid = used - fx.PERIOD_NS // 2
    np.testing.assert_allclose(tf.lookup("odom", "camera_link", mid), fx.T_odom_base(mid) @ fx.T_BASE_CAM, atol=TOL)

    future = used + 30 * 1_000_000_000
    with pytest.raises(ExtrapolationError) as info:
        tf.lookup("odom", "camera_optical", future)
    assert info.value.stamp_ns == future and format_stamp(future) in str(info.value), str(info.value)
    with pytest.raises(UnknownFrameError):
        tf.lookup("odom", "no_such_frame", 0)

    # waiting: a worker thread asks for a stamp 0.2 s ahead while the executor spins in this thread
    ahead = used + 10 * fx.PERIOD_NS
    result = {}

    def worker():
        try:
            result["T"] = tf.lookup("odom", "base_link", ahead, timeout_s=10.0)
        except Exception as exc:  # reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    ros_node.spin_until(lambda: not thread.is_alive(), 15.0, "the waiting lookup")
    thread.join()
    assert "error" not in result, result.get("error")
    np.testing.assert_allclose(result["T"], fx.T_odom_base(ahead), atol=TOL)
    tf.destroy()
    assert process_launcher.stop(proc) in (0, -2, 130), process_launcher.log(proc)


def test_builtin_listener_skips_bad_transforms_and_keeps_the_rest(ros_node):
    listener = TfListener(ros_node.node)
    pub = ros_node.publisher("/tf", TFMessage, TF_QOS)
    ros_node.wait_for_subscribers(pub)
    good = transform_stamped(fx.T_BASE_CAM, Time(sec=5), "base_link", "camera_link")
    bad = TransformStamped()
    bad.header.frame_id, bad.child_frame_id = "base_link", "broken"
    bad.header.stamp = Time(sec=5)
    bad.transform.rotation.w = 2.0  # not a unit quaternion: rejected as tf2 does
    same = transform_stamped(np.eye(4), Time(sec=5), "odom", "odom")  # parent == child
    pub.publish(TFMessage(transforms=[bad, good, same]))
    ros_node.spin_until(lambda: listener.can_transform("base_link", "camera_link", 5_000_000_000), 10.0,
                        "the good transform")
    ros_node.spin_until(lambda: listener.rejected_count == 2, 5.0, "two rejected transforms")
    np.testing.assert_allclose(listener.lookup("base_link", "camera_link", 5_000_000_000), fx.T_BASE_CAM, atol=TOL)
    assert "broken" not in listener.buffer.frames() and "odom" not in listener.buffer.frames()
    listener.destroy()


def test_factory_rejects_unknown_implementation(ros_node):
    with pytest.raises(ValueError, match="builtin"):
        create_transform_lookup(ros_node.node, implementation="tf3")
    ok, reason = tf2_ros_available()
    if not ok:
        with pytest.raises(ImportError, match="tf2_ros"):
            create_transform_lookup(ros_node.node, implementation="tf2_ros")
        assert create_transform_lookup(ros_node.node).implementation == "builtin"  # auto falls back
    else:
        assert create_transform_lookup(ros_node.node).implementation == "tf2_ros"


def test_transform_message_round_trip_and_rejections():
    rng = np.random.default_rng(1)
    for _ in range(10):
        T = fx.T_odom_base(fx.BASE_NS + int(rng.integers(0, 10**10)))
        msg = transform_stamped(T, Time(sec=7, nanosec=5), "odom", "base_link")
        np.testing.assert_allclose(transform_to_matrix(msg.transform), T, atol=1e-15 * 16)  # float64 rounding only
        assert stamp_to_ns(msg.header.stamp) == 7_000_000_005
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = 0.0, 0.0, 0.0, 1.004  # | |q|^2 - 1 | = 0.008 < 0.01: normalised, as tf2 does
    np.testing.assert_allclose(transform_to_matrix(msg.transform)[:3, :3], np.eye(3), atol=1e-15)
    msg.transform.rotation.w = 1.2
    with pytest.raises(MessageConversionError, match="unit quaternion"):
        transform_to_matrix(msg.transform)
    msg.transform.translation.y = float("nan")
    with pytest.raises(MessageConversionError, match="NaN"):
        transform_to_matrix(msg.transform)
