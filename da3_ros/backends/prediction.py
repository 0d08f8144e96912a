"""The one output type of every inference backend: the prediction for ONE window of N views.

Conventions (identical for all backends, see /work/shared/docs/INTERFACES.md):
- arrays are numpy, float32, batch axis removed, views in INPUT order;
- ``depth`` (N, H, W): depth along the optical axis in the window's scale (metric variants: see
  the sidecar ``depth_unit``); H, W are the network input size;
- ``depth_conf`` (N, H, W): confidence >= 1 (multi-view variants), ``None`` for mono/metric;
- ``extrinsics`` (N, 3, 4): world->camera [R|t], OpenCV axes, world = the window's reference view;
- ``intrinsics`` (N, 3, 3): pixels of the H x W network input;
- ``sky`` (N, H, W): sky score (metric/mono variants), else ``None``;
- ``ray`` (N, h', w', 6) direction(3) + origin(3) and ``ray_conf`` (N, h', w') at 4/7 of the input
  resolution, only when requested at export / backend creation, else ``None``;
- ``metric_depth`` (N, H, W): nested variant only (its metric network's canonical depth);
- ``descriptor`` (N, D): each view's L2-normalised place-recognition descriptor, when the graph / backend
  provides it (``--with-descriptor`` exports, the torch backend's ``with_descriptor``, the oracle), else ``None``
  (no loop closure then).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

import numpy as np

from da3_ros.artifact.tensors import OUTPUT_NAMES


@dataclass
class WindowPrediction:
    """Prediction of one window (see the module docstring for shapes and conventions)."""

    depth: np.ndarray
    depth_conf: Optional[np.ndarray] = None
    extrinsics: Optional[np.ndarray] = None
    intrinsics: Optional[np.ndarray] = None
    sky: Optional[np.ndarray] = None
    ray: Optional[np.ndarray] = None
    ray_conf: Optional[np.ndarray] = None
    #: nested variant only: canonical metric depth of its metric network (N, H, W), align host-side.
    metric_depth: Optional[np.ndarray] = None
    #: (N, D) L2-normalised place-recognition descriptor per view, or None (see the module docstring)
    descriptor: Optional[np.ndarray] = None
    variant: str = ""
    ref_view: str = "saddle_balanced"
    #: Free-form timing / diagnostic numbers of the backend call (seconds), e.g. {"infer_s": 0.12}.
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def views(self) -> int:
        return int(self.depth.shape[0])

    @property
    def height(self) -> int:
        return int(self.depth.shape[1])

    @property
    def width(self) -> int:
        return int(self.depth.shape[2])

    def arrays(self) -> Dict[str, np.ndarray]:
        """The non-None array fields by name (in ``OUTPUT_NAMES`` order: the graph's)."""
        out = {}
        for name in OUTPUT_NAMES:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def validate(self) -> "WindowPrediction":
        """Check shapes/dtypes against the conventions; raise ValueError naming the bad field."""
        if self.depth.ndim != 3:
            raise ValueError(f"depth must be (N, H, W), got shape {self.depth.shape}")
        n, h, w = self.depth.shape
        expected = {
            "depth_conf": (n, h, w),
            "extrinsics": (n, 3, 4),
            "intrinsics": (n, 3, 3),
            "sky": (n, h, w),
            "metric_depth": (n, h, w),
        }
        for name, value in self.arrays().items():
            if value.dtype != np.float32:
                raise ValueError(f"{name} must be float32, got {value.dtype}")
            if name in expected and value.shape != expected[name]:
                raise ValueError(f"{name} must have shape {expected[name]}, got {value.shape}")
        if self.ray is not None and (self.ray.ndim != 4 or self.ray.shape[0] != n or self.ray.shape[-1] != 6):
            raise ValueError(f"ray must be (N, h', w', 6), got {self.ray.shape}")
        if self.descriptor is not None and (self.descriptor.ndim != 2 or self.descriptor.shape[0] != n):
            raise ValueError(f"descriptor must be (N, D) with N = {n}, got {self.descriptor.shape}")
        if self.ray_conf is not None and self.ray is not None and self.ray_conf.shape != self.ray.shape[:3]:
            raise ValueError(f"ray_conf must be {self.ray.shape[:3]}, got {self.ray_conf.shape}")
        return self

    @classmethod
    def from_batched(
        cls,
        outputs: Mapping[str, np.ndarray],
        *,
        variant: str,
        ref_view: str,
        timings: Optional[Dict[str, float]] = None,
    ) -> "WindowPrediction":
        """Build from graph/model outputs that carry a leading batch axis of size 1.

        Unknown keys are ignored; missing optional keys become ``None``.
        """
        fields = {}
        for name in OUTPUT_NAMES:
            value = outputs.get(name)
            if value is None:
                continue
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != 1:
                raise ValueError(f"output {name!r} must have a leading batch axis of 1, got shape {arr.shape}")
            fields[name] = np.ascontiguousarray(arr[0], dtype=np.float32)
        if "depth" not in fields:
            raise ValueError(f"outputs have no 'depth' (got {sorted(outputs)})")
        return cls(**fields, variant=variant, ref_view=str(ref_view), timings=dict(timings or {})).validate()
