"""DINOv2-style ViT with alternating within-view / cross-view attention (``backbone.pretrained``).

Input ``(B, N, 3, H, W)`` normalised images, H and W multiples of 14. Token 0 of every view is the
special token (cls, replaced by a camera token at block ``alt_start``), followed by the
``ph*pw`` patch tokens in row-major order. Returns, for each of the 4 ``out_layers``, the patch
features ``(B, N, ph*pw, C or 2C)`` and the special token ``(B, N, C or 2C)``, in input view order.
With ``return_descriptor`` it also returns each view's place-recognition descriptor ``(B, N, C)`` float32:
the patch tokens after block ``DA3Config.descriptor_block`` (before any cross-view attention, so a view's
descriptor does not depend on the other views of its window), layer-normed, mean-pooled, L2-normalised.

Instead of reordering views so that the reference view comes first (official code), the
reference camera token is given to the reference view in place; global attention has no view
positions, so the result is the same up to float round-off and the graph has no gathers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import PATCH_SIZE, POS_EMBED_GRID, DA3Config
from .embeddings import patch_grid, resize_pos_embed, rope_positions, rope_tables
from .layers import TransformerBlock
from .reference_view import reference_mask, select_reference_view


class PatchEmbed(nn.Module):
    """Conv 14x14 stride 14: ``(B, 3, H, W) -> (B, ph*pw, C)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """The ViT proper; parameter names match ``model.backbone.pretrained.*``."""

    def __init__(self, cfg: DA3Config) -> None:
        super().__init__()
        c = cfg.embed_dim
        self.cfg = cfg
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        if cfg.multi_view:
            self.camera_token = nn.Parameter(torch.randn(1, 2, c))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + POS_EMBED_GRID ** 2, c))
        self.blocks = nn.ModuleList(
            TransformerBlock(c, cfg.num_heads, ffn=cfg.ffn, ffn_hidden=cfg.ffn_hidden,
                             qk_norm=cfg.qknorm_start != -1 and i >= cfg.qknorm_start)
            for i in range(cfg.depth))
        self.norm = nn.LayerNorm(c)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        self._table_size: tuple[int, int] | None = None
        for name in self.TABLES:
            self.register_buffer(name, torch.empty(0), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _keys: module.invalidate_tables())

    # ----------------------------------------------------------------- size-dependent tables
    TABLES = ("pos_table", "rope_local_cos", "rope_local_sin", "rope_global_cos", "rope_global_sin")

    def reset_tables(self, device: torch.device | str = "cpu") -> None:
        """Drop the precomputed tables (e.g. after building on the meta device)."""
        for name in self.TABLES:
            setattr(self, name, torch.empty(0, device=device))
        self._table_size = None

    def invalidate_tables(self) -> None:
        """Forget the precomputed tables (they depend on ``pos_embed``); called after loading."""
        self._table_size = None

    def prepare(self, height: int, width: int) -> None:
        """Precompute the positional-embedding and RoPE tables for an ``height x width`` input."""
        ph, pw = patch_grid(height, width)
        if self._table_size == (ph, pw) and self.pos_table.device == self.pos_embed.device:
            return
        dev = self.pos_embed.device
        with torch.no_grad():
            self.pos_table = resize_pos_embed(self.pos_embed.detach(), ph, pw).float()
            if self.cfg.rope_start != -1:
                d = self.cfg.embed_dim // self.cfg.num_heads
                lc, ls = rope_tables(rope_positions(ph, pw, True), d, self.cfg.rope_frequency)
                gc, gs = rope_tables(rope_positions(ph, pw, False), d, self.cfg.rope_frequency)
                self.rope_local_cos, self.rope_local_sin = lc.to(dev), ls.to(dev)
                self.rope_global_cos, self.rope_global_sin = gc.to(dev), gs.to(dev)
        self._table_size = (ph, pw)

    # ----------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor, *, ref_view: str | int = "saddle_balanced",
                cam_token: torch.Tensor | None = None, return_descriptor: bool = False):
        cfg = self.cfg
        b, n, _, h, w = images.shape
        self.prepare(h, w)
        x = self.patch_embed(images.reshape(b * n, 3, h, w))
        cls = self.cls_token.expand(b * n, 1, -1).to(x.dtype)
        x = torch.cat((cls, x), dim=1)
        x = x + self.pos_table.to(x.dtype)
        t = x.shape[1]
        x = x.reshape(b, n, t, -1)
        local_x = x
        ref = 0
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        descriptor = None
        out_layers = set(cfg.out_layers)
        for i, blk in enumerate(self.blocks):
            if cfg.multi_view and i == cfg.alt_start - 1 and cam_token is None:
                ref = select_reference_view(x[:, :, 0], ref_view)
            if cfg.multi_view and i == cfg.alt_start:
                if cam_token is None:
                    mask = reference_mask(ref, b, n, x.device)
                    tok = torch.where(mask, self.camera_token[:, 0:1], self.camera_token[:, 1:2])
                else:
                    tok = cam_token
                x = torch.cat((tok.to(x.dtype).unsqueeze(2), x[:, :, 1:]), dim=2)
            use_rope = cfg.rope_start != -1 and i >= cfg.rope_start
            is_global = cfg.multi_view and i >= cfg.alt_start and i % 2 == 1
            if is_global:
                rope = (self.rope_global_cos.repeat(n, 1), self.rope_global_sin.repeat(n, 1)) \
                    if use_rope else None
                x = blk(x.reshape(b, n * t, -1), rope).reshape(b, n, t, -1)
            else:
                rope = (self.rope_local_cos, self.rope_local_sin) if use_rope else None
                x = blk(x.reshape(b * n, t, -1), rope).reshape(b, n, t, -1)
                local_x = x
            if return_descriptor and i == cfg.descriptor_block:
                pooled = self.norm(x[:, :, 1:]).float().mean(dim=2)
                descriptor = F.normalize(pooled, dim=-1, eps=1e-12)
            if i in out_layers:
                if cfg.cat_token:
                    token = torch.cat((local_x[:, :, 0], x[:, :, 0]), dim=-1)
                    feats = torch.cat((local_x[:, :, 1:], self.norm(x[:, :, 1:])), dim=-1)
                else:
                    token = x[:, :, 0]
                    feats = self.norm(x[:, :, 1:])
                outputs.append((feats, token))
        return (outputs, descriptor) if return_descriptor else outputs


class Backbone(nn.Module):
    """Wrapper that gives the ViT the released name prefix ``backbone.pretrained``."""

    def __init__(self, cfg: DA3Config) -> None:
        super().__init__()
        self.pretrained = VisionTransformer(cfg)

    def forward(self, images: torch.Tensor, **kwargs):
        return self.pretrained(images, **kwargs)
