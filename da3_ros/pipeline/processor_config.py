"""``ProcessorConfig``: the window processor's settings (ROS-free; the node's parameter defaults come from here).

Tracker defaults come from ``KeyframePolicyConfig`` / ``AlignmentConfig`` / ``TrackerConfig`` (one source);
``scale_source`` / ``pose_source`` are parsed once, here, into :mod:`.scale_source`'s types.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Optional

from ..tracking.keyframes import KeyframePolicyConfig
from ..tracking.tracker import TrackerConfig
from ..tracking.window_alignment import AlignmentConfig
from .scale_source import PoseSource, ScaleSource

__all__ = ["ProcessorConfig"]

_KEYFRAMES = KeyframePolicyConfig()
_ALIGNMENT = AlignmentConfig()
_TRACKER = TrackerConfig()


@dataclass(frozen=True)
class ProcessorConfig:
    """``window_size`` 0 = the backend's window. Frozen: a runtime change is a new config
    (``WindowProcessor.apply_runtime_config``)."""

    window_size: int = 0
    keyframe_translation: float = _KEYFRAMES.translation_ratio
    keyframe_rotation_deg: float = _KEYFRAMES.rotation_deg
    keyframe_max_frames: int = _KEYFRAMES.max_frame_gap or 0          # 0 = off
    keyframe_max_interval_s: float = _KEYFRAMES.max_time_gap_s or 0.0  # 0 = off
    alignment_min_inlier_ratio: float = _ALIGNMENT.min_inlier_ratio
    alignment_max_scale_inconsistency: float = _ALIGNMENT.max_scale_inconsistency
    max_rejected_windows: int = _TRACKER.max_consecutive_rejections
    reset_on_time_jump_back: bool = True
    publish_points: bool = True
    point_stride: int = 2
    confidence_threshold: float = 1.0
    min_depth: float = 0.05
    max_depth: float = 50.0
    publish_map_points: bool = False
    map_voxel_size: float = 0.05
    map_max_points: int = 200_000
    scale_source: ScaleSource = ScaleSource.NONE
    pose_source: PoseSource = PoseSource.NONE
    loop_closure: bool = True           # da3_ros.loop.loop_closer (active when the model gives a descriptor)
    map_load_directory: str = ""        # a saved map (loop.map_store) loaded at construction, relocalised against

    #: fields a running processor takes over from a new config (``WindowProcessor.apply_runtime_config``)
    RUNTIME_FIELDS = ("publish_points", "point_stride", "confidence_threshold", "min_depth", "max_depth")

    def __post_init__(self):
        object.__setattr__(self, "scale_source", ScaleSource.parse(self.scale_source))
        object.__setattr__(self, "pose_source", PoseSource.parse(self.pose_source))

    @classmethod
    def from_parameters(cls, get: Callable[[str], object]) -> "ProcessorConfig":
        """The config from the node's parameter values (``get(name)``); a field the getter does not know
        (KeyError) keeps its default."""
        kwargs = {}
        for f in fields(cls):
            try:
                raw = get(f.name)
            except KeyError:
                continue
            default = f.default
            if isinstance(default, (ScaleSource, PoseSource)):
                kwargs[f.name] = raw   # parsed in __post_init__
            elif isinstance(default, bool):
                kwargs[f.name] = bool(raw)
            else:
                kwargs[f.name] = type(default)(raw)
        return cls(**kwargs)

    def tracker_config(self, metric: bool, window_size: Optional[int] = None) -> TrackerConfig:
        """``window_size``: the tracker's window (default: this config's, which must then be set)."""
        window_size = int(window_size or self.window_size)
        alignment = AlignmentConfig(min_inlier_ratio=self.alignment_min_inlier_ratio,
                                    max_scale_inconsistency=self.alignment_max_scale_inconsistency)
        keyframes = KeyframePolicyConfig(
            translation_ratio=self.keyframe_translation, rotation_deg=self.keyframe_rotation_deg,
            max_frame_gap=self.keyframe_max_frames or None, max_time_gap_s=self.keyframe_max_interval_s or None)
        return TrackerConfig(window_size=window_size, metric=metric, keyframes=keyframes,
                             alignment=alignment, max_consecutive_rejections=self.max_rejected_windows)
