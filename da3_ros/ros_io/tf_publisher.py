"""TF broadcasting without tf2_ros: TFMessage publishers on /tf and /tf_static.

/tf_static uses TRANSIENT_LOCAL durability (late joiners receive the latched transforms), exactly as
tf2_ros' StaticTransformBroadcaster does; /tf is RELIABLE, VOLATILE, depth 100.
"""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                    history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)


class TfBroadcaster:
    """Publishes geometry_msgs/TransformStamped lists on /tf (and /tf_static, latched)."""

    def __init__(self, node: Node):
        self._pub = node.create_publisher(TFMessage, "/tf", TF_QOS)
        self._static_pub = node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self._static: dict[str, object] = {}

    def send(self, transforms) -> None:
        self._pub.publish(TFMessage(transforms=list(transforms)))

    def send_static(self, transforms) -> None:
        """Latch static transforms; all static transforms sent so far are republished together."""
        for t in transforms:
            self._static[t.child_frame_id] = t
        self._static_pub.publish(TFMessage(transforms=list(self._static.values())))
