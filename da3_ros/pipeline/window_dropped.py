"""``WindowDropped``: a snapshot the pipeline refuses to process, with the drop reason the node counts.

Raised by ``WindowProcessor.process`` (ROS-free) before anything is published for the snapshot; the node counts
it as dropped with ``reason`` (one of ``frame_accounting.DROP_REASONS``) and logs ``message``:

* ``no_odometry``: a pose-conditioned model (``pose_source: tf``) needs every view's odometry pose, and one
  is missing (the TF lookup of the snapshot failed). A pose-conditioned graph always takes a pose input, so the
  window is never run on invented poses (identity poses would tell the network "no motion").
"""
from __future__ import annotations

__all__ = ["WindowDropped", "NO_ODOMETRY"]

NO_ODOMETRY = "no_odometry"


class WindowDropped(Exception):
    """The snapshot is dropped: ``reason`` (the /diagnostics counter ``dropped_<reason>``) and ``message``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message
