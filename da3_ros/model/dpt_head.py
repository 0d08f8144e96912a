"""Dense prediction heads: DualDPT (any-view variants) and DPT + sky (metric / mono variants).

Input: the 4 backbone feature maps ``(B*N, ph*pw, Cin)`` (patch tokens only, row-major).
Views are processed independently. Outputs are channels-first maps at the network input size
``(H, W)``; the DualDPT ray branch (``ray``, ``ray_conf``) is at ``(8 ph, 8 pw) = (4H/7, 4W/7)`` and
is only computed on request. Parameter names match ``model.head.*`` of the released checkpoints.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import uv_embedding

RAY_HIDDEN = 32


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3x3 convs."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """``out_conv(upsample(RCU2(top + RCU1(lateral))))``, bilinear with align_corners=True."""

    def __init__(self, features: int, has_lateral: bool = True) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features) if has_lateral else None
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1, 1, 0)

    def forward(self, top: torch.Tensor, lateral: torch.Tensor | None,
                size: tuple[int, int]) -> torch.Tensor:
        y = top
        if lateral is not None and self.resConfUnit1 is not None:
            y = y + self.resConfUnit1(lateral)
        y = self.resConfUnit2(y)
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(y)


class Scratch(nn.Module):
    """Container for the ``head.scratch.*`` parameters (stage adapters, fusion blocks, necks)."""


class _ChannelsLastLayerNorm(nn.Module):
    """Placeholder module index in ``output_conv2_aux.N`` (official ``Permute``; no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never called
        return x


def _make_scratch(out_channels: Sequence[int], features: int) -> Scratch:
    s = Scratch()
    for k, oc in enumerate(out_channels):
        setattr(s, f"layer{k + 1}_rn", nn.Conv2d(oc, features, 3, 1, 1, bias=False))
    return s


class _DPTBase(nn.Module):
    """Shared stage projection / resize / fusion pyramid of DPT and DualDPT."""

    def __init__(self, dim_in: int, features: int, out_channels: Sequence[int],
                 pos_embed: bool, norm: bool) -> None:
        super().__init__()
        self.features = features
        self.out_channels = tuple(out_channels)
        self.pos_embed = pos_embed
        self.norm = nn.LayerNorm(dim_in) if norm else nn.Identity()
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, oc, 1) for oc in out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, 4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, 2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], 3, 2, 1),
        ])
        self.scratch = _make_scratch(out_channels, features)
        for k in (1, 2, 3):
            setattr(self.scratch, f"refinenet{k}", FusionBlock(features))
        self.scratch.refinenet4 = FusionBlock(features, has_lateral=False)
        self._uv: dict[tuple, torch.Tensor] = {}

    def uv(self, h: int, w: int, channels: int, aspect: float, ref: torch.Tensor) -> torch.Tensor:
        """Cached UV embedding constant (depends only on sizes)."""
        key = (h, w, channels, aspect, ref.device, ref.dtype)
        if key not in self._uv:
            self._uv[key] = uv_embedding(h, w, channels, aspect).to(device=ref.device,
                                                                    dtype=ref.dtype)
        return self._uv[key]

    def _stages(self, feats: Sequence[torch.Tensor], ph: int, pw: int,
                aspect: float) -> list[torch.Tensor]:
        levels = []
        for k, f in enumerate(feats):
            x = self.norm(f)
            x = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[2], ph, pw)
            x = self.projects[k](x)
            if self.pos_embed:
                x = x + self.uv(ph, pw, x.shape[1], aspect, x)
            x = self.resize_layers[k](x)
            levels.append(getattr(self.scratch, f"layer{k + 1}_rn")(x))
        return levels

    def _fuse(self, levels: list[torch.Tensor], suffix: str = "") -> torch.Tensor:
        l1, l2, l3, l4 = levels
        s = self.scratch
        out = getattr(s, f"refinenet4{suffix}")(l4, None, tuple(l3.shape[-2:]))
        out = getattr(s, f"refinenet3{suffix}")(out, l3, tuple(l2.shape[-2:]))
        out = getattr(s, f"refinenet2{suffix}")(out, l2, tuple(l1.shape[-2:]))
        return getattr(s, f"refinenet1{suffix}")(out, l1, (2 * l1.shape[-2], 2 * l1.shape[-1]))


class DualDPT(_DPTBase):
    """Depth + confidence head with an auxiliary ray-map branch (any-view variants).

    ``depth = exp(l0)``, ``depth_conf = 1 + exp(l1)`` at (H, W); ray branch: ``ray`` (6 channels,
    linear; direction xyz then origin xyz, world frame) and ``ray_conf = 1 + exp(l6)``.
    The official checkpoint also holds ray necks for 3 coarser levels that influence no output;
    they are kept for strict loading but never run.
    """

    def __init__(self, dim_in: int, features: int, out_channels: Sequence[int]) -> None:
        super().__init__(dim_in, features, out_channels, pos_embed=True, norm=True)
        f = features
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, 3, 1, 1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, RAY_HIDDEN, 3, 1, 1), nn.ReLU(), nn.Conv2d(RAY_HIDDEN, 2, 1))
        for k in (1, 2, 3):
            setattr(self.scratch, f"refinenet{k}_aux", FusionBlock(f))
        self.scratch.refinenet4_aux = FusionBlock(f, has_lateral=False)
        self.scratch.output_conv1_aux = nn.ModuleList(
            nn.Sequential(nn.Conv2d(f, f // 2, 3, 1, 1), nn.Conv2d(f // 2, f, 3, 1, 1),
                          nn.Conv2d(f, f // 2, 3, 1, 1), nn.Conv2d(f // 2, f, 3, 1, 1),
                          nn.Conv2d(f, f // 2, 3, 1, 1))
            for _ in range(4))
        ray_norm = nn.LayerNorm(RAY_HIDDEN)  # one module shared by the 4 levels (tied weights)
        self.scratch.output_conv2_aux = nn.ModuleList(
            nn.Sequential(nn.Conv2d(f // 2, RAY_HIDDEN, 3, 1, 1), _ChannelsLastLayerNorm(),
                          ray_norm, _ChannelsLastLayerNorm(), nn.ReLU(),
                          nn.Conv2d(RAY_HIDDEN, 7, 1))
            for _ in range(4))

    def forward(self, feats: Sequence[torch.Tensor], height: int, width: int, ph: int, pw: int,
                with_rays: bool = False) -> dict[str, torch.Tensor]:
        aspect = width / height
        levels = self._stages(feats, ph, pw, aspect)
        s = self.scratch
        main = s.output_conv1(self._fuse(levels))
        main = F.interpolate(main, size=(height, width), mode="bilinear", align_corners=True)
        main = main + self.uv(height, width, main.shape[1], aspect, main)
        logits = s.output_conv2(main)
        out = {"depth": torch.exp(logits[:, 0]), "depth_conf": torch.exp(logits[:, 1]) + 1}
        if with_rays:
            aux = s.output_conv1_aux[3](self._fuse(levels, "_aux"))
            aux = aux + self.uv(aux.shape[-2], aux.shape[-1], aux.shape[1], aspect, aux)
            neck = s.output_conv2_aux[3]
            a = neck[0](aux)
            a = neck[2](a.permute(0, 2, 3, 1))  # LayerNorm over the 32 channels, channels-last
            a = neck[5](F.relu(a).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            out["ray"] = a[..., :6]
            out["ray_conf"] = torch.exp(a[..., 6]) + 1
        return out


class DPT(_DPTBase):
    """Depth + sky head of the monocular variants: ``depth = exp(.)``, ``sky = relu(.)``."""

    def __init__(self, dim_in: int, features: int, out_channels: Sequence[int]) -> None:
        super().__init__(dim_in, features, out_channels, pos_embed=False, norm=False)
        f = features
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, 3, 1, 1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, RAY_HIDDEN, 3, 1, 1), nn.ReLU(), nn.Conv2d(RAY_HIDDEN, 1, 1))
        self.scratch.sky_output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, RAY_HIDDEN, 3, 1, 1), nn.ReLU(), nn.Conv2d(RAY_HIDDEN, 1, 1))

    def forward(self, feats: Sequence[torch.Tensor], height: int, width: int, ph: int, pw: int,
                with_rays: bool = False) -> dict[str, torch.Tensor]:
        levels = self._stages(feats, ph, pw, width / height)
        m = self.scratch.output_conv1(self._fuse(levels))
        m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=True)
        return {"depth": torch.exp(self.scratch.output_conv2(m)[:, 0]),
                "sky": F.relu(self.scratch.sky_output_conv2(m)[:, 0])}


class GSHead(_DPTBase):
    """Parameter tree of the giant's Gaussian-splatting head (``gs_head.*``), for strict loading.

    Not run by this package (3D Gaussian output is out of scope); it only makes released giant /
    nested checkpoints load with strict key checking.
    """

    def __init__(self, dim_in: int, features: int, out_channels: Sequence[int],
                 out_dim: int = 38) -> None:
        super().__init__(dim_in, features, out_channels, pos_embed=True, norm=False)
        f = features
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, 3, 1, 1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, RAY_HIDDEN, 3, 1, 1), nn.ReLU(), nn.Conv2d(RAY_HIDDEN, out_dim, 1))
        self.images_merger = nn.Sequential(
            nn.Conv2d(3, f // 8, 3, 1, 1), nn.GELU(), nn.Conv2d(f // 8, f // 4, 3, 1, 1), nn.GELU(),
            nn.Conv2d(f // 4, f // 2, 3, 1, 1))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("the Gaussian-splatting head is loaded for key compatibility only")
