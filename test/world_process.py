"""What the synthetic world publishers (``robot_world_publisher.py``, ``rig_world_publisher.py``) share: their rclpy
node and TF broadcaster, the start handshake with the test, pacing on a node output, the odometry stream on /tf
and staying alive after the last frame (the test may still call services or look up TF).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo

from da3_ros.ros_io import transform_stamped
from da3_ros.ros_io.tf_publisher import TfBroadcaster
from ros_harness import RELIABLE


def stamp_msg(stamp_ns: int) -> Time:
    """The project's one ns -> builtin_interfaces/Time conversion (``ros_io.ns_to_stamp``)."""
    from da3_ros.ros_io import ns_to_stamp

    return ns_to_stamp(stamp_ns)


def odometry_samples(stamps_s, T_parent_child, rate_hz: float = 0.0, gap: str = ""):
    """(stamps_ns, poses) of an odometry source as a world publishes it: every sample (``rate_hz`` 0) or every
    ``round(native / rate_hz)``-th (a slower odometry on the same clock: 10 Hz wheel odometry from 50 Hz samples),
    without the samples stamped in ``gap`` ("START:END", seconds of robot time, END excluded: the odometry falls
    silent). ``T_parent_child`` None: (stamps_ns, None)."""
    stamps_s = np.asarray(stamps_s, np.float64)
    keep = np.ones(len(stamps_s), bool)
    if rate_hz > 0 and len(stamps_s) > 1:
        step = max(1, int(round(1.0 / (float(stamps_s[1] - stamps_s[0]) * rate_hz))))
        keep[np.arange(len(stamps_s)) % step != 0] = False
    if gap:
        start, _, end = gap.partition(":")
        keep &= ~((stamps_s >= float(start) - 1e-9) & (stamps_s < float(end) - 1e-9))
    stamps_ns = np.round(stamps_s[keep] * 1e9).astype(np.int64)
    assert np.all(np.diff(stamps_ns) > 0), "odometry stamps must increase (tf2 refuses out-of-order samples)"
    return stamps_ns, None if T_parent_child is None else np.asarray(T_parent_child)[keep]


class OdometryStream:
    """Odometry samples ``T_parent_child[k]`` at ``offset_ns + stamps_ns[k]`` sent on /tf in stamp order, in
    batches of 50, up to a time (``send_until``): the world keeps them a little ahead of its images."""

    def __init__(self, tf: TfBroadcaster, stamps_ns: Sequence[int], T_parent_child: Optional[np.ndarray],
                 parent: str, child: str, offset_ns: int):
        self.tf, self.stamps_ns, self.poses = tf, np.asarray(stamps_ns, np.int64), T_parent_child
        self.parent, self.child, self.offset_ns = parent, child, int(offset_ns)
        self.next = 0

    def send_until(self, t_ns: int) -> None:
        """Send every sample with ``stamps_ns <= t_ns`` not sent yet (nothing without poses)."""
        if self.poses is None:
            return
        batch = []
        while self.next < len(self.stamps_ns) and self.stamps_ns[self.next] <= t_ns:
            stamp = stamp_msg(self.offset_ns + int(self.stamps_ns[self.next]))
            batch.append(transform_stamped(self.poses[self.next], stamp, self.parent, self.child))
            self.next += 1
        for k in range(0, len(batch), 50):
            self.tf.send(batch[k:k + 50])

    @property
    def last_sent_ns(self) -> int:
        return int(self.stamps_ns[max(self.next - 1, 0)]) if len(self.stamps_ns) else 0


class WorldProcess:
    """The world's node. ``pace_topic``: a node output (CameraInfo) whose stamps ``wait_for_stamp`` waits for."""

    def __init__(self, name: str, pace_topic: str = ""):
        rclpy.init()
        self.node = rclpy.create_node(name)
        self.tf = TfBroadcaster(self.node)
        self.seen: set[tuple[int, int]] = set()
        self.pace_topic = pace_topic
        if pace_topic:
            self.node.create_subscription(CameraInfo, pace_topic,
                                          lambda m: self.seen.add((m.header.stamp.sec, m.header.stamp.nanosec)),
                                          RELIABLE)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def wait_to_start(self, publishers, start_file: str = "", timeout_s: float = 60.0) -> None:
        """Wait for a subscriber on every publisher (then 0.3 s for discovery the other way), and for ``start_file``
        (printing WAITING FOR START: the test lets the node match its subscriptions first); prints PUBLISHING."""
        end = time.monotonic() + timeout_s
        while min(p.get_subscription_count() for p in publishers) < 1 and time.monotonic() < end:
            self.spin(0.05)
        self.spin(0.3)
        if start_file:
            print("WAITING FOR START", flush=True)
            while not Path(start_file).exists():
                self.spin(0.05)
        print("PUBLISHING", flush=True)

    def wait_for_stamp(self, stamp: Time, timeout_s: float) -> None:
        """Pacing: until the pace topic showed ``stamp`` (or the timeout)."""
        key = (stamp.sec, stamp.nanosec)
        deadline = time.monotonic() + timeout_s
        while self.pace_topic and key not in self.seen and time.monotonic() < deadline:
            self.spin(0.01)

    def keep_alive(self, odometry: Optional[OdometryStream] = None, period_ns: int = 20_000_000) -> None:
        """After the last frame: keep spinning (and the odometry growing slowly) until interrupted."""
        last_ns = odometry.last_sent_ns if odometry is not None else 0
        while True:
            last_ns += period_ns
            if odometry is not None:
                odometry.send_until(last_ns)
            self.spin(0.1)

    def close(self) -> None:
        self.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
