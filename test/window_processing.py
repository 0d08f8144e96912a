"""Test helper: one camera's frame through a ``WindowProcessor`` (a single camera is a snapshot of one)."""
from __future__ import annotations

from da3_ros.pipeline.camera_stream import CameraFrame


def process_frame(proc, rgb, stamp_ns, camera=None, T_base_cam=None, T_odometry_base=None):
    """``proc.process`` of the one-camera snapshot ``rgb`` at ``stamp_ns``: the ``WindowOutcome``."""
    outcome = proc.process([CameraFrame(rgb, int(stamp_ns), camera, T_base_cam)], T_odometry_base=T_odometry_base)
    assert len(outcome.cameras) == 1 and outcome.cameras[0].stamp_ns == int(stamp_ns), "one camera, its own stamp"
    return outcome
