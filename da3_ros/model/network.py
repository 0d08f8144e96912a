"""The DA3 network: backbone + head (+ camera encoder/decoder), one module per variant.

Conventions of :meth:`DA3Model.forward` outputs (B windows of N views, network input H x W):

* ``depth`` ``(B, N, H, W)`` -- z-depth along the optical axis. Any-view variants: in the window's
  arbitrary scale shared with the extrinsics' translations. Metric variant: canonical depth,
  metres = ``raw * f / 300`` with ``f`` the mean focal length in network-input pixels
  (:func:`da3_ros.model.metric.canonical_to_metric_depth`).
* ``depth_conf`` ``(B, N, H, W)`` -- confidence ``1 + exp(.) >= 1`` (any-view variants).
* ``extrinsics`` ``(B, N, 3, 4)`` -- world->camera ``[R | t]``, OpenCV axes (x right, y down,
  z forward); world = camera frame of the reference view (see ``ref_view``).
* ``intrinsics`` ``(B, N, 3, 3)`` -- pixels of the network input, DA3 pixel-corner convention (principal
  point at ``(W/2, H/2)``; ``PinholeCamera.from_da3_intrinsics`` converts to the project's pixel centres).
* ``ray`` ``(B, N, 4H/7, 4W/7, 6)`` and ``ray_conf`` ``(B, N, 4H/7, 4W/7)`` -- only with
  ``return_rays=True``: ray direction (3, unnormalised) and origin (3) in the world frame;
  solve poses from them with :func:`da3_ros.model.ray_pose.solve_pose_from_rays`.
* ``sky`` ``(B, N, H, W)`` -- metric/mono variants: sky score (ReLU output; >= 0.5 = sky).
* ``descriptor`` ``(B, N, C)`` -- only with ``return_descriptor=True``: each view's L2-normalised global
  descriptor for place recognition (the backbone's pooled patch tokens before cross-view attention; see
  :mod:`da3_ros.model.backbone`). Nested variant: the any-view network's.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .backbone import Backbone
from .camera_heads import CameraDecoder, CameraEncoder
from .config import DA3Config, NestedConfig, get_config
from .dpt_head import DPT, DualDPT, GSHead
from .embeddings import patch_grid
from .pose_encoding import pose_encoding_to_extrinsics_intrinsics
from .reference_view import validate_ref_view

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _check_images(images: torch.Tensor) -> tuple[int, int, int, int]:
    if not isinstance(images, torch.Tensor) or images.ndim != 5 or images.shape[2] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, N, 3, H, W) tensor, got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be normalised floats, got dtype {images.dtype} "
                         "(use da3_ros.model.normalization.normalize_uint8_images)")
    b, n, _, h, w = images.shape
    patch_grid(h, w)
    return b, n, h, w


class DA3Model(nn.Module):
    """One single-network DA3 variant (any-view or monocular).

    Parameter names equal the released checkpoint keys without their leading ``model.``.
    Build with :func:`da3_ros.model.build_model` / :func:`da3_ros.model.load_model`.
    """

    def __init__(self, cfg: DA3Config) -> None:
        super().__init__()
        self.config = cfg
        self.variant = cfg.name
        self.backbone = Backbone(cfg)
        if cfg.head == "dualdpt":
            self.head: nn.Module = DualDPT(cfg.head_dim_in, cfg.head_features, cfg.head_out_channels)
        else:
            self.head = DPT(cfg.head_dim_in, cfg.head_features, cfg.head_out_channels)
        if cfg.camera_heads:
            self.cam_enc = CameraEncoder(cfg.embed_dim, cfg.cam_enc_depth, cfg.cam_enc_heads)
            self.cam_dec = CameraDecoder(cfg.head_dim_in)
        if cfg.gs_head:
            self.gs_head = GSHead(cfg.head_dim_in, cfg.head_features, cfg.head_out_channels)
        self.compute_dtype = torch.float32

    @property
    def multi_view(self) -> bool:
        return self.config.multi_view

    def prepare(self, height: int, width: int) -> "DA3Model":
        """Precompute the size-dependent tables (pos-embed, RoPE) for ``height x width`` inputs.

        Optional: ``forward`` does it lazily on a new size. Call it before tracing/exporting.
        """
        self.backbone.pretrained.prepare(height, width)
        return self

    def set_precision(self, precision: str) -> "DA3Model":
        """``"fp32"`` | ``"fp16"`` | ``"bf16"``: dtype of the backbone (autocast); heads stay fp32."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.compute_dtype = PRECISIONS[precision]
        return self

    def forward(self, images: torch.Tensor, *, ref_view: str | int = "saddle_balanced",
                pose_encoding: torch.Tensor | None = None,
                return_rays: bool = False, return_descriptor: bool = False) -> dict[str, torch.Tensor]:
        """Run one window. ``images`` ``(B, N, 3, H, W)`` ImageNet-normalised float.

        ``ref_view``: ``"saddle_balanced"`` (official default), ``"saddle_sim_range"``,
        ``"first"``, ``"middle"`` (strategies, used when N >= 3, else view 0) or a view index.
        ``pose_encoding``: optional ``(B, N, 9)`` known camera-to-world poses (see
        :mod:`da3_ros.model.pose_encoding`; normalise them with
        ``normalize_window_extrinsics`` first) -> camera encoder; ``ref_view`` is then unused.
        ``return_rays``: also compute the ray branch (any-view variants).
        ``return_descriptor``: also return ``descriptor`` ``(B, N, C)`` (see the module docstring).
        """
        b, n, h, w = _check_images(images)
        validate_ref_view(ref_view, n)
        self._check_window_options(b, n, pose_encoding, return_rays)
        if not self.config.multi_view:
            descriptor = None
            with self._backbone_precision(images.device):
                layers = self.backbone(images, return_descriptor=return_descriptor)
            if return_descriptor:
                layers, descriptor = layers
            return self._heads(layers, b, n, h, w, return_rays, descriptor)
        tokens, selection = self.encode_views(images)
        return self.forward_tokens(tokens, selection, height=h, width=w, ref_view=ref_view,
                                   pose_encoding=pose_encoding, return_rays=return_rays,
                                   return_descriptor=return_descriptor)

    def encode_views(self, images: torch.Tensor, *, return_descriptor: bool = False):
        """The per-view part of an any-view forward: ``images`` ``(B, N, 3, H, W)`` normalised ->
        ``(tokens (B, N, 1 + H/14 * W/14, C), selection_tokens (B, N, C))``.

        Every view is encoded independently (normalisation aside, this is patch embedding and the blocks
        before ``alt_start``), so a view's result can be cached and reused in later windows.
        ``forward(images) == forward_tokens(*encode_views(images), ...)`` exactly.
        ``return_descriptor``: also return each view's ``descriptor`` ``(B, N, C)`` float32 (a third element;
        it is taken at ``descriptor_block = alt_start - 1``, the last per-view block, so it belongs here).
        """
        _check_images(images)
        with self._backbone_precision(images.device):
            out = self.backbone(images, stage="encode", return_descriptor=return_descriptor)
        if return_descriptor:
            return out[0], out[1], out[2].float()
        return out

    def forward_tokens(self, tokens: torch.Tensor, selection: torch.Tensor | None, *, height: int, width: int,
                       ref_view: str | int = "saddle_balanced", pose_encoding: torch.Tensor | None = None,
                       return_rays: bool = False, return_descriptor: bool = False) -> dict[str, torch.Tensor]:
        """The cross-view part of an any-view forward on the N views' cached tokens (see
        :meth:`encode_views`): same outputs as :meth:`forward`. ``selection`` may be None when the
        reference view does not depend on the data (pose conditioning, fixed reference, N < 3).
        ``return_descriptor``: ``descriptor`` from the tokens (as :meth:`encode_views` gives it)."""
        b, n = int(tokens.shape[0]), int(tokens.shape[1])
        patch_grid(height, width)
        validate_ref_view(ref_view, n)
        self._check_window_options(b, n, pose_encoding, return_rays)
        cam_token = None if pose_encoding is None else self.cam_enc(pose_encoding.to(tokens.device))
        descriptor = None
        with self._backbone_precision(tokens.device):
            if return_descriptor:
                descriptor = self.backbone(tokens, stage="descriptor")
            layers = self.backbone(tokens, stage="window", selection=selection, ref_view=ref_view,
                                   cam_token=cam_token)
        return self._heads(layers, b, n, height, width, return_rays, descriptor)

    def _check_window_options(self, b: int, n: int, pose_encoding: torch.Tensor | None, return_rays: bool) -> None:
        cfg = self.config
        if pose_encoding is not None:
            if not cfg.multi_view:
                raise ValueError(f"{cfg.name} is monocular and takes no pose conditioning")
            if tuple(pose_encoding.shape) != (b, n, 9):
                raise ValueError(f"pose_encoding must have shape {(b, n, 9)}, got "
                                 f"{tuple(pose_encoding.shape)}")
        if return_rays and not cfg.multi_view:
            raise ValueError(f"{cfg.name} has no ray head (return_rays needs an any-view variant)")

    def _backbone_precision(self, device: torch.device):
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.compute_dtype)

    def _heads(self, layers, b: int, n: int, h: int, w: int, return_rays: bool,
               descriptor: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        ph, pw = h // 14, w // 14
        with torch.autocast(device_type=layers[-1][0].device.type, enabled=False):
            feats = [f.float().reshape(b * n, ph * pw, -1) for f, _ in layers]
            out = self.head(feats, h, w, ph, pw, with_rays=return_rays)
            out = {k: v.reshape((b, n) + tuple(v.shape[1:])) for k, v in out.items()}
            if self.config.multi_view:
                enc = self.cam_dec(layers[-1][1].float())
                out["extrinsics"], out["intrinsics"] = pose_encoding_to_extrinsics_intrinsics(
                    enc, (h, w))
        if descriptor is not None:
            out["descriptor"] = descriptor.float()
        return out


class NestedDA3Model(nn.Module):
    """``da3nested-giant-large``: an any-view giant (``da3``) plus a metric large (``da3_metric``).

    ``forward`` returns the any-view outputs plus ``metric_depth`` (canonical metric depth of the
    metric network) and ``sky``; align them host-side with
    :func:`da3_ros.model.metric.align_to_metric`.
    """

    def __init__(self, cfg: NestedConfig) -> None:
        super().__init__()
        self.config = cfg
        self.variant = cfg.name
        self.da3 = DA3Model(cfg.anyview)
        self.da3_metric = DA3Model(cfg.metric)

    multi_view = True

    def prepare(self, height: int, width: int) -> "NestedDA3Model":
        self.da3.prepare(height, width)
        self.da3_metric.prepare(height, width)
        return self

    def set_precision(self, precision: str) -> "NestedDA3Model":
        self.da3.set_precision(precision)
        self.da3_metric.set_precision(precision)
        return self

    def forward(self, images: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        out = self.da3(images, **kwargs)
        metric = self.da3_metric(images)
        out["metric_depth"] = metric["depth"]
        out["sky"] = metric["sky"]
        return out


def build_model(variant: str, device: str | torch.device = "cpu") -> DA3Model | NestedDA3Model:
    """Build ``variant`` with random weights, in eval mode, on ``device`` (may be ``"meta"``)."""
    cfg = get_config(variant)
    with torch.device(device):
        model = NestedDA3Model(cfg) if isinstance(cfg, NestedConfig) else DA3Model(cfg)
    return model.eval()
