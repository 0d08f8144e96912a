"""Honest units: which outputs go out while they are not in metres (``publish_unscaled``; README "On your robot").

``publish_unscaled`` is ``auto`` | ``true`` | ``false``; ``auto`` is ``true`` only when no scale source is
configured (``scale_source: none`` and no ``pose_source: tf``: nothing could ever make the outputs metric, so they
go out in their own unit, with a WARN on /diagnostics). With a scale source, ``auto`` is ``false``: until the
scale is known, depth, points, map_points, pose, odometry, path and the node's TF edge are **withheld** (counted
on /diagnostics as ``withheld_not_metres``), so a robot configured for metres receives metres or nothing.
``depth/camera_info`` and ``confidence`` carry no length and always go out (a driver pacing on them keeps going);
the correction edge ``odom_frame -> odometry_frame`` is identity until the scale is known (that is metres).

No rclpy here: the node asks :meth:`UnitPolicy.allows` once per frame and per map update.
"""
from __future__ import annotations

import threading
from typing import Any, Dict

__all__ = ["PUBLISH_UNSCALED_CHOICES", "UnitPolicy", "resolve_publish_unscaled"]

PUBLISH_UNSCALED_CHOICES = ("auto", "true", "false")


def resolve_publish_unscaled(value: Any, scale_expected: bool) -> bool:
    """``publish_unscaled`` (a choice or a bool) -> bool; ``auto`` = not ``scale_expected``."""
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key not in PUBLISH_UNSCALED_CHOICES:
        raise ValueError(f"publish_unscaled must be one of {' | '.join(PUBLISH_UNSCALED_CHOICES)}, got {value!r}")
    return (not scale_expected) if key == "auto" else key == "true"


class UnitPolicy:
    """The resolved ``publish_unscaled`` and its counters (thread-safe: the worker and the map thread ask).

    ``allows(metric, output)``: whether an output in metres (``metric``) or not may go out; a refusal is counted
    per output. ``unscaled_published``: outputs that went out not in metres (the node then WARNs).
    """

    def __init__(self, value: Any, scale_expected: bool):
        self.publish_unscaled = resolve_publish_unscaled(value, scale_expected)
        self.setting = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
        self._lock = threading.Lock()
        self._withheld: Dict[str, int] = {}
        self.unscaled_published = 0
        self.last_unit = ""

    def allows(self, metric: bool, output: str, unit: str = "") -> bool:
        """True when ``output`` may be published (it is metric, or unscaled outputs are allowed)."""
        with self._lock:
            if not metric:
                self.last_unit = unit or self.last_unit
            if metric:
                return True
            if self.publish_unscaled:
                self.unscaled_published += 1
                return True
            self._withheld[output] = self._withheld.get(output, 0) + 1
            return False

    @property
    def withheld(self) -> int:
        with self._lock:
            return sum(self._withheld.values())

    def describe(self) -> Dict[str, Any]:
        """/diagnostics keys: ``publish_unscaled`` (the resolved value and the setting), ``withheld_not_metres``
        (outputs withheld so far) and one ``withheld_not_metres_<output>`` per output."""
        with self._lock:
            info: Dict[str, Any] = {"publish_unscaled": f"{str(self.publish_unscaled).lower()} ({self.setting})",
                                    "withheld_not_metres": sum(self._withheld.values()),
                                    "published_not_metres": self.unscaled_published}
            info.update({f"withheld_not_metres_{name}": n for name, n in sorted(self._withheld.items())})
            return info
