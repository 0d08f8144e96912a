"""`InferenceBackend`: the one interface behind which Torch, ONNX Runtime and TensorRT run DA3.

A backend is created for a fixed window: ``views`` (N), ``height`` (H), ``width`` (W), ``variant``
and ``ref_view`` never change during its life; ``capabilities`` says what the model predicts (poses, metric
depth, sky, confidence). ``infer`` takes the window's images as uint8 RGB
``(N, H, W, 3)`` at network resolution (normalisation happens inside the backend / graph) and
returns a :class:`~da3_ros.backends.prediction.WindowPrediction` in input view order.

``view_keys`` (optional, one hashable per view, e.g. ``(snapshot_id, camera)``) let a backend that runs a split
model (per-view encoder + window graph) encode each view once and reuse its tokens while the key stays in
the window (da3_ros.backends.view_token_cache); backends without a split ignore them. The outputs do not
depend on the keys.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, Hashable, Optional, Sequence

import numpy as np

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.tensors import POSE_ENCODING_DIM
from da3_ros.backends.prediction import WindowPrediction


class InferenceBackend(abc.ABC):
    """Runs DA3 on one window of images. Subclasses implement ``_infer`` and ``describe``."""

    name: str = "abstract"

    def __init__(self, *, views: int, height: int, width: int, variant: str, ref_view: str,
                 capabilities: ModelCapabilities, pose_conditioned: bool = False) -> None:
        self._views = int(views)
        self._height = int(height)
        self._width = int(width)
        self._variant = str(variant)
        self._ref_view = str(ref_view)
        self._pose_conditioned = bool(pose_conditioned)
        self._capabilities = capabilities
        self._closed = False

    # -- fixed window geometry -------------------------------------------------------------
    @property
    def views(self) -> int:
        return self._views

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    @property
    def variant(self) -> str:
        return self._variant

    @property
    def ref_view(self) -> str:
        return self._ref_view

    @property
    def capabilities(self) -> ModelCapabilities:
        """What the model predicts (from the sidecar / engine metadata / model config)."""
        return self._capabilities

    @property
    def pose_conditioned(self) -> bool:
        """True when ``infer`` requires a pose encoding (a pose-conditioned graph/model)."""
        return self._pose_conditioned

    # -- inference -------------------------------------------------------------------------
    def infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray] = None,
              view_keys: Optional[Sequence[Hashable]] = None) -> WindowPrediction:
        """Run one window.

        images: uint8 RGB, shape (N, H, W, 3) with N, H, W equal to this backend's window.
        pose_encoding: float32 (N, 9) [t(3), q xyzw(4), fov_h, fov_w] of camera-to-world, required
        iff ``pose_conditioned``.
        view_keys: None (no caching) or N hashables naming the views (see the module docstring).
        """
        if self._closed:
            raise RuntimeError(f"{self.name} backend is closed")
        images = self.check_images(images)
        pose_encoding = self.check_pose_encoding(pose_encoding)
        view_keys = self.check_view_keys(view_keys)
        if view_keys is None:
            return self._infer(images, pose_encoding)
        return self._infer_views(images, pose_encoding, view_keys)

    def check_view_keys(self, view_keys: Optional[Sequence[Hashable]]) -> Optional[list]:
        if view_keys is None:
            return None
        keys = list(view_keys)
        if len(keys) != self._views:
            raise ValueError(f"view_keys must name the {self._views} views of the window, got {len(keys)}")
        for key in keys:
            try:
                hash(key)
            except TypeError as exc:
                raise ValueError(f"view key {key!r} is not hashable ({exc})") from exc
        return keys

    def _infer_views(self, images: np.ndarray, pose_encoding: Optional[np.ndarray], view_keys: list
                     ) -> WindowPrediction:
        """``_infer`` with the views' keys; backends that cache per-view work override it."""
        return self._infer(images, pose_encoding)

    def check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        expected = (self._views, self._height, self._width, 3)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 RGB, got dtype {images.dtype}")
        if images.shape != expected:
            raise ValueError(
                f"images must have shape (N, H, W, 3) = {expected} for this {self.name} backend "
                f"(window of {self._views} views at {self._height}x{self._width}), got {images.shape}; "
                "resize/crop to the network size or rebuild the model for the new size"
            )
        return np.ascontiguousarray(images)

    def check_pose_encoding(self, pose_encoding: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if not self._pose_conditioned:
            if pose_encoding is not None:
                raise ValueError(
                    f"this {self.name} backend is not pose-conditioned; export with --pose-conditioned "
                    "to feed a pose encoding"
                )
            return None
        if pose_encoding is None:
            raise ValueError(f"this {self.name} backend is pose-conditioned: pose_encoding (N, 9) is required")
        pose_encoding = np.asarray(pose_encoding, dtype=np.float32)
        if pose_encoding.shape != (self._views, POSE_ENCODING_DIM):
            raise ValueError(
                f"pose_encoding must have shape ({self._views}, {POSE_ENCODING_DIM}), got {pose_encoding.shape}"
            )
        return np.ascontiguousarray(pose_encoding)

    @abc.abstractmethod
    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        """images already validated (N, H, W, 3) uint8; pose_encoding (N, 9) float32 or None."""

    # -- diagnostics / lifetime --------------------------------------------------------------
    def describe(self) -> Dict[str, Any]:
        """Key facts for /diagnostics and logs (all values JSON-serialisable)."""
        return {
            "backend": self.name,
            "variant": self._variant,
            "views": self._views,
            "height": self._height,
            "width": self._width,
            "ref_view": self._ref_view,
            "pose_conditioned": self._pose_conditioned,
            **{f"capability_{k}": v for k, v in self._capabilities.to_dict().items()},
        }

    def close(self) -> None:
        """Release sessions / device memory. Idempotent."""
        self._closed = True

    def __enter__(self) -> "InferenceBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
