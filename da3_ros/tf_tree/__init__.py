"""The ROS-free TF tree: ``TransformBuffer``, a thread-safe time-indexed frame tree (tf2 ``BufferCore`` semantics).

Sits just above geometry (it imports only ``da3_ros.geometry`` and NumPy); ``ros_io.tf_listener`` feeds it from
/tf and /tf_static, the node looks transforms up through it.
"""
from .transform_buffer import (ConnectivityError, EdgeInterval, ExtrapolationError, ReparentEvent, TransformBuffer,
                               TransformLookupError, UnknownFrameError, format_stamp)

__all__ = [
    "ConnectivityError", "EdgeInterval", "ExtrapolationError", "ReparentEvent", "TransformBuffer",
    "TransformLookupError", "UnknownFrameError", "format_stamp",
]
