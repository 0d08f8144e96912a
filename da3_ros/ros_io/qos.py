"""QoS profiles for camera-style inputs and outputs, from parameter values."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    """``reliability`` is "reliable" or "best_effort" (case-insensitive); ``depth`` >= 1.

    A BEST_EFFORT subscription matches both best-effort camera drivers and reliable publishers.
    """
    key = str(reliability).strip().lower()
    if key not in _RELIABILITY:
        raise ValueError(f"qos reliability must be 'reliable' or 'best_effort', got '{reliability}'")
    if int(depth) < 1:
        raise ValueError(f"qos depth must be >= 1, got {depth}")
    return QoSProfile(depth=int(depth), reliability=_RELIABILITY[key], durability=DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST)
