"""TF input: one lookup interface over tf2_ros (a real ROS 2 install) or a built-in /tf listener.

``create_transform_lookup(node, cache_time_s)`` returns a :class:`TransformLookup`:

- ``lookup(target_frame, source_frame, stamp_ns, timeout_s=0.0) -> T_target_source`` (4x4 float64,
  maps data in ``source_frame`` into ``target_frame``; ``stamp_ns == 0``: latest common time),
- ``lookup_stamped(...) -> (T_target_source, stamp_ns_used)``,
- ``can_transform(target_frame, source_frame, stamp_ns, timeout_s=0.0) -> bool``,
- ``take_reparent_events()`` (frames whose parent changed, for the node to warn; tf2_ros: none reported),
- ``parent_of(frame) -> parent or None`` (the node's camera-only mode walks a camera's static tree up to its
  root, so that it never gives a frame a second parent; whether an edge is static: ``lookup_stamped(parent,
  frame, 0)`` returns the stamp 0),
- ``implementation`` ("tf2_ros" or "builtin") and ``destroy()``.

Failures raise the errors of ``tf_tree.transform_buffer`` (all ``TransformLookupError``); the
tf2_ros adapter converts tf2's LookupException / ConnectivityException / ExtrapolationException to
``UnknownFrameError`` / ``ConnectivityError`` / ``ExtrapolationError``.

The built-in :class:`TfListener` subscribes /tf (RELIABLE, VOLATILE, depth 100) and /tf_static
(RELIABLE, TRANSIENT_LOCAL, depth 100), the QoS of tf2_ros' TransformListener, and feeds a
:class:`~da3_ros.tf_tree.transform_buffer.TransformBuffer`.

Threading: a lookup with ``timeout_s > 0`` blocks the calling thread until the transform arrives or
the timeout passes, and the transforms arrive through the node's executor. Call it from a worker
thread (the node does), never from an executor callback of the same single-threaded executor.
"""
from __future__ import annotations

from typing import List, Optional, Protocol, Tuple

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from ..tf_tree.transform_buffer import (ConnectivityError, ExtrapolationError, ReparentEvent, TransformBuffer,
                                        TransformLookupError, UnknownFrameError, format_stamp)
from .errors import MessageConversionError
from .optional_packages import importable
from .pose_messages import ns_to_stamp, stamp_to_ns, transform_stamped, transform_to_matrix
from .tf_publisher import TF_QOS

__all__ = [
    "IMPLEMENTATIONS", "TF_STATIC_LISTENER_QOS", "TfListener", "Tf2RosLookup", "TransformLookup",
    "create_transform_lookup", "tf2_ros_available",
]

IMPLEMENTATIONS = ("auto", "tf2_ros", "builtin")

# tf2_ros' StaticListenerQoS: late joiners get every latched static transform
TF_STATIC_LISTENER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)

_LOG_THROTTLE_S = 5.0


class TransformLookup(Protocol):
    """The one interface the node uses for TF input (see the module docstring)."""

    implementation: str

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
               timeout_s: float = 0.0) -> np.ndarray: ...

    def lookup_stamped(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
                       timeout_s: float = 0.0) -> Tuple[np.ndarray, int]: ...

    def can_transform(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
                      timeout_s: float = 0.0) -> bool: ...

    def take_reparent_events(self) -> List[ReparentEvent]: ...

    def parent_of(self, frame: str) -> Optional[str]: ...

    def destroy(self) -> None: ...


def tf2_ros_available() -> Tuple[bool, str]:
    """``(True, "")`` when ``import tf2_ros`` works, else ``(False, reason)``."""
    return importable("tf2_ros")


class TfListener:
    """Built-in TF listener: /tf and /tf_static TFMessage subscriptions feeding a ``TransformBuffer``.

    Transforms that cannot be stored (NaN, non-unit quaternion, empty or identical frame ids) are
    skipped, counted in ``rejected_count`` and logged (throttled); the rest of the message is kept.
    """

    implementation = "builtin"

    def __init__(self, node: Node, buffer: Optional[TransformBuffer] = None, callback_group=None):
        self.buffer = buffer if buffer is not None else TransformBuffer()
        self.rejected_count = 0
        self._node = node
        self._subs = [
            node.create_subscription(TFMessage, "/tf", lambda m: self._on_message(m, False), TF_QOS,
                                     callback_group=callback_group),
            node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_message(m, True),
                                     TF_STATIC_LISTENER_QOS, callback_group=callback_group),
        ]

    def _on_message(self, msg: TFMessage, static: bool) -> None:
        for t in msg.transforms:
            try:
                self.buffer.set_transform(t.header.frame_id, t.child_frame_id, stamp_to_ns(t.header.stamp),
                                          transform_to_matrix(t.transform), static=static)
            except (MessageConversionError, ValueError) as exc:
                self.rejected_count += 1
                topic = "/tf_static" if static else "/tf"
                self._node.get_logger().warning(
                    f"ignoring transform '{t.header.frame_id}' -> '{t.child_frame_id}' on {topic}: {exc} "
                    f"({self.rejected_count} rejected so far)", throttle_duration_sec=_LOG_THROTTLE_S)

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> np.ndarray:
        return self.buffer.lookup(target_frame, source_frame, stamp_ns, timeout_s)

    def lookup_stamped(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
                       timeout_s: float = 0.0) -> Tuple[np.ndarray, int]:
        return self.buffer.lookup_stamped(target_frame, source_frame, stamp_ns, timeout_s)

    def can_transform(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> bool:
        return self.buffer.can_transform(target_frame, source_frame, stamp_ns, timeout_s)

    def take_reparent_events(self) -> List[ReparentEvent]:
        return self.buffer.take_reparent_events()

    def parent_of(self, frame: str) -> Optional[str]:
        return self.buffer.parent_of(frame)

    def destroy(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []


class Tf2RosLookup:
    """``tf2_ros.Buffer`` + ``tf2_ros.TransformListener`` behind the ``TransformLookup`` interface."""

    implementation = "tf2_ros"

    def __init__(self, node: Optional[Node], cache_time_s: float = 10.0):
        """With ``node=None`` there is no listener: the buffer is fed through ``set_transform`` (tests)."""
        import tf2_ros
        from rclpy.duration import Duration

        self._tf2_ros = tf2_ros
        self.buffer = tf2_ros.Buffer(cache_time=Duration(nanoseconds=int(round(cache_time_s * 1e9))), node=node)
        self.listener = tf2_ros.TransformListener(self.buffer, node) if node is not None else None

    def set_transform(self, parent_frame: str, child_frame: str, stamp_ns: int, T_parent_child: np.ndarray,
                      static: bool = False, authority: str = "da3_ros") -> bool:
        """Insert into the tf2 buffer with the ``TransformBuffer.set_transform`` signature (always True)."""
        msg = transform_stamped(T_parent_child, ns_to_stamp(stamp_ns), parent_frame, child_frame)
        if static:
            self.buffer.set_transform_static(msg, authority)
        else:
            self.buffer.set_transform(msg, authority)
        return True  # tf2 reports rejected data through its log, not a return value

    @staticmethod
    def _time(stamp_ns: int):
        from rclpy.time import Time

        return Time(nanoseconds=int(stamp_ns))

    @staticmethod
    def _duration(timeout_s: float):
        from rclpy.duration import Duration

        return Duration(nanoseconds=int(round(max(0.0, float(timeout_s)) * 1e9)))

    def _convert(self, exc: Exception, target: str, source: str, stamp_ns: int) -> TransformLookupError:
        when = format_stamp(stamp_ns) if stamp_ns else "the latest common time"
        message = f"lookup of '{source}' into '{target}' at {when} failed (tf2_ros): {exc}"
        tf2 = self._tf2_ros
        if isinstance(exc, getattr(tf2, "ExtrapolationException", ())):
            return ExtrapolationError(message, target, source, stamp_ns)
        if isinstance(exc, getattr(tf2, "ConnectivityException", ())):
            return ConnectivityError(message, target, source, stamp_ns)
        if isinstance(exc, getattr(tf2, "LookupException", ())):
            return UnknownFrameError(message, "", target, source, stamp_ns)
        return TransformLookupError(message, target, source, stamp_ns)

    def lookup_stamped(self, target_frame: str, source_frame: str, stamp_ns: int = 0,
                       timeout_s: float = 0.0) -> Tuple[np.ndarray, int]:
        try:
            msg = self.buffer.lookup_transform(target_frame, source_frame, self._time(stamp_ns),
                                               self._duration(timeout_s))
        except getattr(self._tf2_ros, "TransformException", Exception) as exc:
            raise self._convert(exc, target_frame, source_frame, int(stamp_ns)) from exc
        return transform_to_matrix(msg.transform), stamp_to_ns(msg.header.stamp)

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> np.ndarray:
        return self.lookup_stamped(target_frame, source_frame, stamp_ns, timeout_s)[0]

    def can_transform(self, target_frame: str, source_frame: str, stamp_ns: int = 0, timeout_s: float = 0.0) -> bool:
        return bool(self.buffer.can_transform(target_frame, source_frame, self._time(stamp_ns),
                                              self._duration(timeout_s)))

    def take_reparent_events(self) -> List[ReparentEvent]:
        return []  # tf2 keeps per-sample parents and does not report changes

    def parent_of(self, frame: str) -> Optional[str]:
        """The parent tf2 knows for ``frame`` (from ``all_frames_as_yaml``), None for a root or an unknown frame."""
        import yaml

        try:
            frames = yaml.safe_load(self.buffer.all_frames_as_yaml()) or {}
        except yaml.YAMLError:
            return None
        entry = frames.get(frame.lstrip("/")) if isinstance(frames, dict) else None
        parent = entry.get("parent") if isinstance(entry, dict) else None
        return str(parent) if parent else None

    def destroy(self) -> None:
        unregister = getattr(self.listener, "unregister", None) if self.listener is not None else None
        if unregister is not None:
            unregister()


def create_transform_lookup(node: Node, cache_time_s: float = 10.0, implementation: str = "auto",
                            callback_group=None) -> TransformLookup:
    """TF lookup for ``node``: tf2_ros when importable (``"auto"``), else the built-in listener.

    ``implementation`` may force ``"tf2_ros"`` (raises ``ImportError`` with the reason when missing) or
    ``"builtin"``.
    """
    key = str(implementation).strip().lower()
    if key not in IMPLEMENTATIONS:
        raise ValueError(f"TF implementation must be one of {IMPLEMENTATIONS}, got '{implementation}'")
    if key in ("auto", "tf2_ros"):
        ok, reason = tf2_ros_available()
        if ok:
            return Tf2RosLookup(node, cache_time_s)
        if key == "tf2_ros":
            raise ImportError(reason)
    return TfListener(node, TransformBuffer(cache_time_s), callback_group=callback_group)
