"""``ModelCapabilities``: what a loaded model predicts (poses, metric depth, sky, confidence).

One home for "what can this model do": backends expose it (``InferenceBackend.capabilities``) and the
pipeline decides units and tracking from it, never from substrings of a variant name. Sources:

- a model configuration (:meth:`ModelCapabilities.from_config`): the heads of the architecture
  (``camera_heads`` -> poses, DPT head -> sky, DualDPT -> confidence) and ``metric_depth``
  (da3metric-large) from ``da3_ros.model.config``;
- an exported artefact's sidecar (``capabilities`` entry); sidecars written before it existed are read
  from their output names and ``depth_unit`` (:meth:`ModelCapabilities.from_outputs`).

``metric_depth`` is about the ``depth`` output: canonical metric depth (metres for a 300 px focal
length; metres = depth * f / 300 with f from camera_info). The nested variant's ``depth`` is the
any-view network's (window scale), so it is not ``metric_depth`` here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Mapping

DEPTH_UNIT_CANONICAL_METRIC = "canonical_metric"
DEPTH_UNIT_WINDOW_SCALE = "window_scale"


@dataclass(frozen=True)
class ModelCapabilities:
    predicts_poses: bool        # camera extrinsics/intrinsics per view (any-view variants)
    metric_depth: bool          # ``depth`` is canonical metric (see the module docstring)
    predicts_sky: bool          # a sky map (mono/metric DPT heads)
    predicts_confidence: bool   # ``depth_conf`` (any-view DualDPT heads)

    @property
    def depth_unit(self) -> str:
        """The sidecar's ``depth_unit`` string for this model's ``depth`` output."""
        return DEPTH_UNIT_CANONICAL_METRIC if self.metric_depth else DEPTH_UNIT_WINDOW_SCALE

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelCapabilities":
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"capabilities lack {missing}")
        return cls(**{f.name: bool(data[f.name]) for f in fields(cls)})

    @classmethod
    def from_config(cls, config) -> "ModelCapabilities":
        """From a ``DA3Config`` or ``NestedConfig`` (da3_ros.model.config)."""
        if hasattr(config, "anyview"):   # nested: any-view depth/poses/confidence, sky from the metric network
            any_view = cls.from_config(config.anyview)
            return cls(predicts_poses=any_view.predicts_poses, metric_depth=False, predicts_sky=True,
                       predicts_confidence=any_view.predicts_confidence)
        return cls(predicts_poses=bool(config.camera_heads), metric_depth=bool(getattr(config, "metric_depth", False)),
                   predicts_sky=bool(config.has_sky), predicts_confidence=config.head == "dualdpt")

    @classmethod
    def from_outputs(cls, output_names: Iterable[str], depth_unit: str) -> "ModelCapabilities":
        """For artefacts whose sidecar predates ``capabilities``: the graph outputs and ``depth_unit``."""
        names = set(output_names)
        return cls(predicts_poses="extrinsics" in names, metric_depth=depth_unit == DEPTH_UNIT_CANONICAL_METRIC,
                   predicts_sky="sky" in names, predicts_confidence="depth_conf" in names)
