"""Keyframe policy and window selection for the sliding-window tracker.

A frame becomes a keyframe when, relative to the last keyframe, any of these holds:
- its camera centre moved more than ``translation_ratio`` x the last keyframe's median scene depth
  (a unit-free parallax proxy, so it works in any odometry unit);
- its orientation changed by more than ``rotation_deg``;
- ``max_frame_gap`` frames or ``max_time_gap_s`` seconds passed (either may be None = off).

The window for a new frame is the last ``N-1`` keyframes (oldest first) followed by the new frame.
Until ``N-1`` keyframes exist the window is padded at the front by repeating the oldest available
keyframe (or the new frame itself when there is no keyframe yet), so it always has exactly N views.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, List, Optional, Sequence

import numpy as np

from da3_ros.geometry.transforms import invert_transform, rotation_angle

__all__ = ["KeyframePolicyConfig", "KeyframePolicy", "KeyframeDecision", "select_window"]


@dataclass
class KeyframePolicyConfig:
    """Keyframe thresholds. These defaults are THE defaults: the node's ``keyframe_*`` parameters
    (da3_ros.node.parameters via ProcessorConfig) read them, so library users, benchmarks and the
    node run the same tracker."""

    translation_ratio: float = 0.10
    rotation_deg: float = 10.0
    max_frame_gap: Optional[int] = 15
    max_time_gap_s: Optional[float] = 2.0

    def __post_init__(self):
        if not self.translation_ratio > 0:
            raise ValueError(f"translation_ratio must be > 0, got {self.translation_ratio}")
        if not self.rotation_deg > 0:
            raise ValueError(f"rotation_deg must be > 0, got {self.rotation_deg}")
        if self.max_frame_gap is not None and self.max_frame_gap < 1:
            raise ValueError(f"max_frame_gap must be >= 1 or None, got {self.max_frame_gap}")
        if self.max_time_gap_s is not None and not self.max_time_gap_s > 0:
            raise ValueError(f"max_time_gap_s must be > 0 or None, got {self.max_time_gap_s}")


@dataclass
class KeyframeDecision:
    is_keyframe: bool
    reason: str
    translation_ratio: float
    rotation_deg: float


class KeyframePolicy:
    """Decides whether a frame with a known odometry pose becomes a keyframe."""

    def __init__(self, config: Optional[KeyframePolicyConfig] = None):
        self.config = config if config is not None else KeyframePolicyConfig()

    def decide(
        self,
        T_odom_last_kf: np.ndarray,
        last_kf_median_depth: float,
        frames_since_last_kf: int,
        seconds_since_last_kf: float,
        T_odom_cam: np.ndarray,
        threshold_scale: float = 1.0,
    ) -> KeyframeDecision:
        """Decision for a frame at pose ``T_odom_cam`` (both poses camera-to-odom SE(3)).

        ``threshold_scale`` multiplies the translation and rotation thresholds (the tracker uses
        < 1 while the window is still padded, to fill it with distinct keyframes sooner)."""
        if not (np.isfinite(last_kf_median_depth) and last_kf_median_depth > 0):
            raise ValueError(f"last_kf_median_depth must be finite and > 0, got {last_kf_median_depth}")
        cfg = self.config
        T_rel = invert_transform(T_odom_last_kf) @ np.asarray(T_odom_cam, np.float64)
        trans = float(np.linalg.norm(T_rel[:3, 3])) / last_kf_median_depth
        rot = float(np.degrees(rotation_angle(T_rel[:3, :3])))
        if not threshold_scale > 0:
            raise ValueError(f"threshold_scale must be > 0, got {threshold_scale}")
        if trans > threshold_scale * cfg.translation_ratio:
            reason = "translation"
        elif rot > threshold_scale * cfg.rotation_deg:
            reason = "rotation"
        elif cfg.max_frame_gap is not None and frames_since_last_kf >= cfg.max_frame_gap:
            reason = "frame_gap"
        elif cfg.max_time_gap_s is not None and seconds_since_last_kf >= cfg.max_time_gap_s:
            reason = "time_gap"
        else:
            reason = ""
        return KeyframeDecision(bool(reason), reason, trans, rot)


def select_window(keyframe_ids: Sequence[Hashable], new_frame_id: Hashable, window_size: int) -> List[Hashable]:
    """``[last N-1 keyframes (oldest first)..., new_frame_id]``, front-padded to N views."""
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    kfs = [k for k in keyframe_ids if k != new_frame_id][-(window_size - 1):] if window_size > 1 else []
    pad_with = kfs[0] if kfs else new_frame_id
    return [pad_with] * (window_size - 1 - len(kfs)) + kfs + [new_frame_id]
