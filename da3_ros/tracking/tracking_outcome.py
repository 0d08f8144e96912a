"""``TrackingOutcome``: what tracking made of one window's newest frame (one enum, ROS-free).

One value instead of the ``aligned`` / ``rejected`` / ``reinitialised`` booleans that used to be copied from
result type to result type:

================ ======================================================================================
outcome          meaning
================ ======================================================================================
initialised      the first window of a trajectory: its newest frame is the odometry frame's origin
aligned          the window was aligned to the shared keyframes; the newest frame has a pose
reinitialised    a new keyframe chain anchored at the last accepted pose (after rejections or a reset
                 that kept the odometry frame)
rejected         the alignment failed a quality gate: no pose; depth with the last accepted scale
relocalised      aligned, and its keyframe was recognised in a loaded map: ``T_map_odom`` now puts the
                 trajectory into that map (da3_ros.loop.loop_closer)
untracked        no tracking at all (a window of 1 view, or a model that predicts no poses): per-frame
                 depth, no pose
================ ======================================================================================
"""
from __future__ import annotations

from enum import Enum

__all__ = ["TrackingOutcome"]


class TrackingOutcome(str, Enum):
    INITIALISED = "initialised"
    ALIGNED = "aligned"
    REINITIALISED = "reinitialised"
    REJECTED = "rejected"
    UNTRACKED = "untracked"
    RELOCALISED = "relocalised"

    @property
    def has_pose(self) -> bool:
        """The newest frame got a pose in the odometry frame."""
        return self in (TrackingOutcome.INITIALISED, TrackingOutcome.ALIGNED, TrackingOutcome.REINITIALISED,
                        TrackingOutcome.RELOCALISED)
