"""The demo's DDS side: a player that publishes camera frames (+ camera_info; for a robot input also the
camera mount on /tf_static and the wheel odometry on /tf) and a recorder that subscribes to every output of
da3_node (serialized bytes, for the MCAP bag and the report)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from ..geometry.camera import PinholeCamera
from ..ros_io import intrinsics_to_camera_info, ns_to_stamp, numpy_to_image, transform_stamped
from ..ros_io.output_matching import wait_for_matched_outputs
from ..ros_io.tf_publisher import TF_QOS, TfBroadcaster

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def output_topics(ns: str) -> dict:
    return {f"{ns}/depth": Image, f"{ns}/depth/camera_info": CameraInfo, f"{ns}/confidence": Image,
            f"{ns}/points": PointCloud2, f"{ns}/pose": PoseStamped, f"{ns}/odometry": Odometry,
            f"{ns}/path": Path, f"{ns}/map_points": PointCloud2, "/tf": TFMessage, "/diagnostics": DiagnosticArray}


def type_name(msg_type) -> str:
    module = msg_type.__module__.split(".")[0]
    return f"{module}/msg/{msg_type.__name__}"


@dataclass
class Recorded:
    topic: str
    msg_type: type
    data: bytes
    receive_ns: int

    def message(self):
        return deserialize_message(self.data, self.msg_type)


@dataclass
class Recording:
    messages: list = field(default_factory=list)   # Recorded, inputs and outputs, in arrival order

    def of(self, topic: str) -> list:
        return [m for m in self.messages if m.topic == topic]


class PlayerRecorder:
    """One rclpy node in its own context that publishes ``{ns}/image``, ``{ns}/camera_info`` and
    records every output topic of the node under namespace ``ns``."""

    def __init__(self, ns: str = "/da3"):
        self.ns = ns
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("da3_demo_player_recorder", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.recording = Recording()
        self.image_pub = self.node.create_publisher(Image, f"{ns}/image", RELIABLE)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
        self.tf = TfBroadcaster(self.node)
        self.last_diagnostics: dict = {}
        self.subscriptions: dict = {}   # output topic -> [its recording Subscription]
        for topic, msg_type in output_topics(ns).items():
            qos = TF_QOS if topic == "/tf" else RELIABLE
            callback = self._recorder(topic, msg_type)
            self.subscriptions[topic] = [self.node.create_subscription(msg_type, topic, callback, qos, raw=True)]

    def _recorder(self, topic, msg_type):
        def callback(data: bytes):
            self.recording.messages.append(Recorded(topic, msg_type, bytes(data), time.time_ns()))
            if topic == "/diagnostics":
                for status in deserialize_message(data, DiagnosticArray).status:
                    if "da3_node" in status.name:
                        self.last_diagnostics = {kv.key: kv.value for kv in status.values}
                        self.last_diagnostics["_level"] = int.from_bytes(status.level, "little") \
                            if isinstance(status.level, bytes) else int(status.level)
                        self.last_diagnostics["_message"] = status.message
        return callback

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.02, max(0.0, end - time.monotonic())))

    def spin_until(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def node_ready(self) -> bool:
        return self.image_pub.get_subscription_count() > 0 and self.info_pub.get_subscription_count() > 0

    def wait_for_outputs(self, node: str, topics, timeout: float, check=None) -> None:
        """Until the node ``node`` (fully qualified name) matched the recorder's subscriptions on ``topics``
        (``ros_io.output_matching``): call before the first frame, or its outputs may be lost."""
        wait_for_matched_outputs(self.node, {t: self.subscriptions[t] for t in topics}, node,
                                 lambda seconds: self.executor.spin_once(timeout_sec=seconds), timeout=timeout,
                                 check=check)

    def publish_static_tf(self, static_transforms, stamp_ns: int) -> None:
        """Latch the camera mount ((parent, child, T_parent_child) edges) on /tf_static (TRANSIENT_LOCAL)."""
        transforms = [transform_stamped(T, ns_to_stamp(stamp_ns), parent, child)
                      for parent, child, T in static_transforms]
        self.tf.send_static(transforms)
        self.recording.messages.append(Recorded("/tf_static", TFMessage,
                                                serialize_message(TFMessage(transforms=transforms)), time.time_ns()))

    def publish_odometry(self, samples, stamp0_ns: int, parent: str, child: str) -> None:
        """Wheel odometry samples ((stamp_s, T_parent_child), stamp = ``stamp0_ns`` + stamp_s) on /tf, in
        messages of at most 50 transforms (TF_QOS is KEEP_LAST 100). The recorder gets them back through its
        own /tf subscription."""
        transforms = [transform_stamped(T, ns_to_stamp(stamp0_ns + int(round(t * 1e9))), parent, child)
                      for t, T in samples]
        for k in range(0, len(transforms), 50):
            self.tf.send(transforms[k:k + 50])

    def publish(self, rgb, K, stamp_ns: int, frame_id: str) -> None:
        stamp = ns_to_stamp(stamp_ns)
        header = Header(stamp=stamp, frame_id=frame_id)
        now = time.time_ns()
        if K is not None:
            info = intrinsics_to_camera_info(PinholeCamera(rgb.shape[1], rgb.shape[0], K), header=header)
            self.info_pub.publish(info)
            self.recording.messages.append(Recorded(f"{self.ns}/camera_info", CameraInfo,
                                                    serialize_message(info), now))
        image = numpy_to_image(rgb, "rgb8", header=header)
        self.image_pub.publish(image)
        self.recording.messages.append(Recorded(f"{self.ns}/image", Image, serialize_message(image), now))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
