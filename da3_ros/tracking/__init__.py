"""Sliding-window tracking (ROS-free): keyframes, window->odometry Sim(3)/SE(3) alignment, trajectory.

Main entry point: ``WindowTracker`` (``tracking.tracker``); evaluation helpers in ``tracking.metrics``.
"""
from .keyframes import KeyframePolicy, KeyframePolicyConfig, select_window
from .tracker import FrameResult, TrackerConfig, WindowTracker
from .window_alignment import AlignmentConfig

__all__ = ["WindowTracker", "TrackerConfig", "FrameResult", "AlignmentConfig", "KeyframePolicy",
           "KeyframePolicyConfig", "select_window"]
