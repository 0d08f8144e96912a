"""What one window produces: ``WindowOutcome`` (pose, scale, tracking) and one ``CameraOutput`` per camera.

Both are frozen and built once, complete, by ``WindowProcessor.process`` (nothing is filled in afterwards, no
flag is copied from type to type). A single camera is a rig of one: ``cameras`` has one entry.

Units: ``CameraOutput.depth`` / ``points`` are in the published unit (``WindowProcessor.depth_unit``: metres
once a metric scale is known); ``T_odom_cam`` poses are in odometry units (the node scales them with
``metres_per_unit``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

import numpy as np

from ..geometry.camera import PinholeCamera
from ..tracking.metric_scale import ScaleEstimate
from ..tracking.rig_scale import RigScaleEstimate
from ..tracking.tracking_outcome import TrackingOutcome
from ..tracking.tracking_state import TrackingStatus

__all__ = ["StreamEvent", "CameraOutput", "WindowOutcome"]


@dataclass(frozen=True)
class StreamEvent:
    """Something about the input stream the node logs and counts (``name``: the /diagnostics counter)."""

    name: str
    message: str


@dataclass(frozen=True)
class CameraOutput:
    """One camera's outputs of a window (camera resolution): what its depth, depth/camera_info, confidence and
    points topics carry, stamped ``stamp_ns`` (its own image's stamp)."""

    stamp_ns: int
    depth: np.ndarray                        # (h, w) float32, NaN where the network did not look
    confidence: Optional[np.ndarray]         # (h, w) float32 or None
    camera_intrinsics: PinholeCamera         # camera of ``depth`` (camera_info or the model's), pixel centres
    T_odom_cam: Optional[np.ndarray] = None  # camera-to-odom 4x4, odometry units (None: no pose)
    points: Optional[np.ndarray] = None      # (h', w', 3) float32 camera optical frame, NaN = rejected
    point_colours: Optional[np.ndarray] = None   # (h', w', 3) uint8
    valid_points: int = 0


@dataclass(frozen=True)
class WindowOutcome:
    """One window's result for the newest snapshot. ``T_odom_cam`` is the reference camera's (``cameras[0]``)
    pose, the body's pose; ``tracking`` says what tracking made of the window (``reason`` why)."""

    cameras: Tuple[CameraOutput, ...]
    tracking: TrackingOutcome
    reason: str = ""
    keyframe: bool = False
    reset: bool = False                      # the trajectory was reset before this window
    conditioned: bool = False                # the window was aligned to its TF poses (pose_source: tf)
    # metric scale (None without a source): metres per odometry unit when known, its estimate
    metres_per_unit: Optional[float] = None
    scale_estimate: Optional[ScaleEstimate] = None
    T_odometry_base: Optional[np.ndarray] = None   # the robot odometry given for this snapshot
    tracking_status: Optional[TrackingStatus] = None
    tracking_stats: Optional[Mapping[str, float]] = None   # the tracker's alignment stats of an accepted window
    median_depth: Optional[float] = None     # of the reference camera, odometry units (accepted windows)
    rig_scale: Optional[RigScaleEstimate] = None   # this window's estimate from the rig's extrinsics
    depth_scaled_by: str = "none"            # "window rig scale" | "odometry-frame scale" | "none"
    events: Tuple[StreamEvent, ...] = ()
    stage_seconds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def reference(self) -> CameraOutput:
        """The reference camera (``cameras[0]``): its pose is the rig's."""
        return self.cameras[0]

    @property
    def T_odom_cam(self) -> Optional[np.ndarray]:
        """The reference camera's pose (odometry units), None without one."""
        return self.cameras[0].T_odom_cam

    @property
    def aligned(self) -> bool:
        return self.tracking in (TrackingOutcome.ALIGNED, TrackingOutcome.RELOCALISED)

    @property
    def rejected(self) -> bool:
        return self.tracking is TrackingOutcome.REJECTED

    @property
    def reinitialised(self) -> bool:
        return self.tracking is TrackingOutcome.REINITIALISED
