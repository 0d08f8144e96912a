"""`TorchBackend`: runs the PyTorch DA3 model (da3_ros.model) on CPU or CUDA in fp32/fp16/bf16.

``model_file_path`` is a checkpoint (HF-layout directory, ``.safetensors``/``.pth`` file or HF repo
id). The uint8 images are normalised on the backend's device by the exported graph's own function
(da3_ros.model.normalization.normalize_uint8_images: cast, NHWC->NCHW, /255, ImageNet mean/std).
fp16/bf16 run the backbone under autocast while the heads stay fp32 (``DA3Model.set_precision``).
The model can also be passed in directly (``model=``), e.g. for tests and the check command.

With ``view_keys`` an any-view model runs the per-view part (``DA3Model.encode_views``) once per view new to
the window and the cross-view part on the cached tokens (``forward_tokens``); same outputs as one forward.

A checkpoint has no fixed window: ``views``/``height``/``width``/``ref_view`` left at None (the node's
0 / "") take the defaults below: N = ``DEFAULT_VIEWS`` for any-view models and 1 for mono/metric
models (they see one view; more would only repeat it), ``DEFAULT_HEIGHT`` x ``DEFAULT_WIDTH`` (a 16:9-ish
multiple of the 14 px patch) and ``DEFAULT_REF_VIEW``. ``variant`` None accepts the checkpoint's.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.errors import BackendUnavailableError
from da3_ros.artifact.precision import PRECISIONS
from da3_ros.artifact.ref_view import parse_ref_view
from da3_ros.backends.base import InferenceBackend
from da3_ros.backends.prediction import WindowPrediction
from da3_ros.backends.view_token_cache import ViewTokenCache


DEFAULT_VIEWS = 4
DEFAULT_HEIGHT = 280
DEFAULT_WIDTH = 504
DEFAULT_REF_VIEW = "saddle_balanced"


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, model_file_path: str = "", *, variant: Optional[str] = None, views: Optional[int] = None,
                 height: Optional[int] = None, width: Optional[int] = None, ref_view: Optional[str] = None,
                 device: str = "cpu", precision: str = "fp32",
                 pose_conditioned: bool = False, with_rays: bool = False, num_threads: int = 0,
                 model=None, with_descriptor: bool = False) -> None:
        import torch

        from da3_ros.model import load_model

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"torch backend: device {device!r} requested but CUDA is not available")
        if num_threads > 0:
            torch.set_num_threads(int(num_threads))
        ref_view = DEFAULT_REF_VIEW if ref_view in (None, "") else ref_view
        self._ref_view_arg = parse_ref_view(ref_view)
        self._device = torch.device(device)
        t0 = time.perf_counter()
        if model is None:
            if not model_file_path:
                raise BackendUnavailableError("torch backend needs model_file_path = a DA3 checkpoint")
            model = load_model(model_file_path, variant=variant, device=str(self._device))
        model = model.to(self._device).float().eval()
        if variant is not None and getattr(model, "variant", variant) != variant:
            raise ValueError(f"checkpoint {model_file_path} holds {model.variant!r}, configuration wants "
                             f"{variant!r} (parameter variant; \"\" = the checkpoint's)")
        capabilities = ModelCapabilities.from_config(model.config)
        views = int(views) if views else (DEFAULT_VIEWS if capabilities.predicts_poses else 1)
        height, width = int(height or DEFAULT_HEIGHT), int(width or DEFAULT_WIDTH)
        model.set_precision(precision)
        model.prepare(height, width)
        super().__init__(views=views, height=height, width=width, variant=getattr(model, "variant", variant or ""),
                         ref_view=str(ref_view), capabilities=capabilities, pose_conditioned=pose_conditioned)
        self.model = model
        self.precision = precision
        self.with_rays = bool(with_rays)
        self.with_descriptor = bool(with_descriptor)
        self.model_file_path = str(model_file_path)
        self._torch = torch
        self.token_cache = ViewTokenCache() if hasattr(model, "encode_views") and capabilities.predicts_poses \
            else None
        self.load_s = time.perf_counter() - t0

    def normalise(self, images: np.ndarray):
        """uint8 (N, H, W, 3) -> normalised float32 (1, N, 3, H, W) on the device (graph-identical math)."""
        from da3_ros.model.normalization import normalize_uint8_images

        return normalize_uint8_images(self._torch.from_numpy(images).to(self._device, non_blocking=True)[None])

    def forward_dict(self, images: np.ndarray, pose_encoding: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """Raw model outputs (torch tensors with batch axis) for validated inputs."""
        torch = self._torch
        kwargs: Dict[str, Any] = {"ref_view": self._ref_view_arg}
        if pose_encoding is not None:
            kwargs["pose_encoding"] = torch.from_numpy(pose_encoding)[None].to(self._device)
        if self.with_rays:
            kwargs["return_rays"] = True
        if self.with_descriptor:
            kwargs["return_descriptor"] = True
        with torch.inference_mode():
            return self.model(self.normalise(images), **kwargs)

    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        torch = self._torch
        t0 = time.perf_counter()
        out = self.forward_dict(images, pose_encoding)
        arrays = {k: v.float().cpu().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
        infer_s = time.perf_counter() - t0
        return WindowPrediction.from_batched(arrays, variant=self.variant, ref_view=self.ref_view,
                                             timings={"infer_s": infer_s})

    def _infer_views(self, images: np.ndarray, pose_encoding: Optional[np.ndarray], view_keys) -> WindowPrediction:
        if self.token_cache is None:
            return self._infer(images, pose_encoding)
        torch = self._torch
        t0 = time.perf_counter()
        with torch.inference_mode():
            def encode(v):   # (tokens, selection[, descriptor]): the descriptor is per view, cached with them
                return self.model.encode_views(self.normalise(images[v:v + 1]),
                                               return_descriptor=self.with_descriptor)
            values, encoded = self.token_cache.tokens_for(view_keys, images, encode)
            t1 = time.perf_counter()
            pose = None if pose_encoding is None else torch.from_numpy(pose_encoding)[None].to(self._device)
            out = self.model.forward_tokens(torch.cat([value[0] for value in values], dim=1),
                                            torch.cat([value[1] for value in values], dim=1),
                                            height=self.height, width=self.width, ref_view=self._ref_view_arg,
                                            pose_encoding=pose, return_rays=self.with_rays)
            if self.with_descriptor:
                out["descriptor"] = torch.cat([value[2] for value in values], dim=1)
        arrays = {k: v.float().cpu().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
        t2 = time.perf_counter()
        return WindowPrediction.from_batched(arrays, variant=self.variant, ref_view=self.ref_view, timings={
            "infer_s": t2 - t0, "encode_s": t1 - t0, "window_s": t2 - t1, "encoded_views": float(encoded)})

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d.update(model_file=self.model_file_path, device=str(self._device), precision=self.precision,
                 with_rays=self.with_rays, with_descriptor=self.with_descriptor,
                 torch_version=self._torch.__version__, load_s=round(self.load_s, 3))
        return d

    def close(self) -> None:
        if self.token_cache is not None:
            self.token_cache.clear()
        self.model = None
        super().close()
