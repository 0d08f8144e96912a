"""Publisher process for the TF listener tests: latches the static transforms of tf_fixtures once on
/tf_static (printing STATIC_SENT), then publishes odom -> base_link on /tf at 50 Hz until interrupted."""
import sys
from pathlib import Path

import rclpy
from builtin_interfaces.msg import Time

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tf_fixtures as fx  # noqa: E402

from da3_ros.ros_io import transform_stamped  # noqa: E402
from da3_ros.ros_io.tf_publisher import TfBroadcaster  # noqa: E402


def _time(stamp_ns: int) -> Time:
    from da3_ros.ros_io import ns_to_stamp

    return ns_to_stamp(stamp_ns)


def main():
    rclpy.init()
    node = rclpy.create_node("da3_tf_fixture_publisher")
    broadcaster = TfBroadcaster(node)
    stamp0 = _time(fx.BASE_NS)
    assert (stamp0.sec, stamp0.nanosec) == divmod(fx.BASE_NS, 1_000_000_000)
    broadcaster.send_static([transform_stamped(fx.T_BASE_CAM, stamp0, "base_link", "camera_link"),
                             transform_stamped(fx.T_CAM_OPT, stamp0, "camera_link", "camera_optical")])
    print("STATIC_SENT", flush=True)
    k = 0

    def tick():
        nonlocal k
        stamp_ns = fx.BASE_NS + k * fx.PERIOD_NS
        broadcaster.send([transform_stamped(fx.T_odom_base(stamp_ns), _time(stamp_ns), "odom", "base_link")])
        k += 1

    node.create_timer(fx.PERIOD_NS * 1e-9, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
