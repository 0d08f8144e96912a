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
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch embedding + cls token + positional embedding: ``(B, N, 3, H, W) -> (B, N, T, C)``."""
        b, n, _, h, w = images.shape
        self.prepare(h, w)
        x = self.patch_embed(images.reshape(b * n, 3, h, w))
        cls = self.cls_token.expand(b * n, 1, -1).to(x.dtype)
        x = torch.cat((cls, x), dim=1)
        x = x + self.pos_table.to(x.dtype)
        return x.reshape(b, n, x.shape[1], -1)

    def _local_block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Block ``i`` as within-view attention on ``(B, N, T, C)`` tokens."""
        b, n, t, _ = x.shape
        use_rope = self.cfg.rope_start != -1 and i >= self.cfg.rope_start
        rope = (self.rope_local_cos, self.rope_local_sin) if use_rope else None
        return self.blocks[i](x.reshape(b * n, t, -1), rope).reshape(b, n, t, -1)

    def _layer_output(self, x: torch.Tensor, local_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg.cat_token:
            token = torch.cat((local_x[:, :, 0], x[:, :, 0]), dim=-1)
            feats = torch.cat((local_x[:, :, 1:], self.norm(x[:, :, 1:])), dim=-1)
        else:
            token = x[:, :, 0]
            feats = self.norm(x[:, :, 1:])
        return feats, token

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """Each view's place-recognition descriptor ``(B, N, C)`` float32 from the ``(B, N, T, C)`` tokens after
        block ``DA3Config.descriptor_block``: patch tokens layer-normed, mean-pooled, L2-normalised."""
        pooled = self.norm(x[:, :, 1:]).float().mean(dim=2)
        return F.normalize(pooled, dim=-1, eps=1e-12)

    def encode_views(self, images: torch.Tensor, *, return_descriptor: bool = False):
        """The per-view part of an any-view network (every block before ``alt_start``).

        Returns ``(tokens (B, N, T, C), selection_tokens (B, N, C))``: the tokens after block
        ``alt_start - 1`` and the special tokens the reference-view selection reads (before block
        ``alt_start - 1``). Each view is independent of the others, so the result of one view can be
        cached and reused in later windows (:meth:`forward_tokens`). ``return_descriptor`` appends each
        view's descriptor ``(B, N, C)`` (:meth:`descriptor` of the returned tokens: ``descriptor_block`` is
        ``alt_start - 1``, the last per-view block).
        """
        cfg = self.cfg
        if not cfg.multi_view:
            raise ValueError(f"{cfg.name} is monocular: it has no per-view / cross-view split")
        if min(cfg.out_layers) < cfg.alt_start:
            raise ValueError(f"{cfg.name}: an output layer ({min(cfg.out_layers)}) lies before alt_start "
                             f"({cfg.alt_start}); the split needs every output layer after it")
        x = self.embed(images)
        selection = x[:, :, 0]
        for i in range(cfg.alt_start):
            if i == cfg.alt_start - 1:
                selection = x[:, :, 0]
            x = self._local_block(i, x)
        if return_descriptor:
            return x, selection, self.descriptor(x)
        return x, selection

    def forward_tokens(self, x: torch.Tensor, selection: torch.Tensor | None, *,
                       ref_view: str | int = "saddle_balanced", cam_token: torch.Tensor | None = None
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The cross-view part: blocks ``alt_start..`` on the tokens of :meth:`encode_views`.

        ``selection`` may be None when the reference does not depend on the data (pose
        conditioning, a fixed reference, N < 3).
        """
        cfg = self.cfg
        b, n, t, _ = x.shape
        if cam_token is None:
            ref = select_reference_view(x[:, :, 0] if selection is None else selection, ref_view)
            if selection is None and not isinstance(ref, int):
                raise ValueError(f"ref_view {ref_view!r} selects from the special tokens: selection is required")
            mask = reference_mask(ref, b, n, x.device)
            tok = torch.where(mask, self.camera_token[:, 0:1], self.camera_token[:, 1:2])
        else:
            tok = cam_token
        x = torch.cat((tok.to(x.dtype).unsqueeze(2), x[:, :, 1:]), dim=2)
        local_x = x
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        out_layers = set(cfg.out_layers)
        for i in range(cfg.alt_start, cfg.depth):
            if i % 2 == 1:
                use_rope = cfg.rope_start != -1 and i >= cfg.rope_start
                rope = (self.rope_global_cos.repeat(n, 1), self.rope_global_sin.repeat(n, 1)) \
                    if use_rope else None
                x = self.blocks[i](x.reshape(b, n * t, -1), rope).reshape(b, n, t, -1)
            else:
                x = self._local_block(i, x)
                local_x = x
            if i in out_layers:
                outputs.append(self._layer_output(x, local_x))
        return outputs

    def forward(self, images: torch.Tensor, *, ref_view: str | int = "saddle_balanced",
                cam_token: torch.Tensor | None = None, stage: str = "full",
                selection: torch.Tensor | None = None, return_descriptor: bool = False):
        """``stage="full"``: images -> layer outputs; ``"encode"``: :meth:`encode_views`; ``"window"``:
        :meth:`forward_tokens` with ``images`` = the tokens; ``"descriptor"``: :meth:`descriptor` with
        ``images`` = the tokens of :meth:`encode_views`. The stages go through ``forward`` so that an
        exported graph's node names keep their module scope (``/backbone/pretrained/blocks.i/...``, which
        the int8 / fp16 rewrites select on).

        ``return_descriptor`` (stages ``"full"`` and ``"encode"``): also return each view's descriptor
        ``(B, N, C)``: ``(layer outputs, descriptor)`` / ``(tokens, selection, descriptor)``."""
        if stage == "encode":
            return self.encode_views(images, return_descriptor=return_descriptor)
        if stage == "window":
            return self.forward_tokens(images, selection, ref_view=ref_view, cam_token=cam_token)
        if stage == "descriptor":
            return self.descriptor(images)
        if stage != "full":
            raise ValueError(f"stage must be 'full', 'encode', 'window' or 'descriptor', got {stage!r}")
        if self.cfg.multi_view:
            x, selection = self.encode_views(images)
            outputs = self.forward_tokens(x, selection, ref_view=ref_view, cam_token=cam_token)
            return (outputs, self.descriptor(x)) if return_descriptor else outputs
        x = self.embed(images)
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        descriptor = None
        out_layers = set(self.cfg.out_layers)
        for i in range(self.cfg.depth):
            x = self._local_block(i, x)
            if return_descriptor and i == self.cfg.descriptor_block:
                descriptor = self.descriptor(x)
            if i in out_layers:
                outputs.append(self._layer_output(x, x))
        return (outputs, descriptor) if return_descriptor else outputs


class Backbone(nn.Module):
    """Wrapper that gives the ViT the released name prefix ``backbone.pretrained``."""

    def __init__(self, cfg: DA3Config) -> None:
        super().__init__()
        self.pretrained = VisionTransformer(cfg)

    def forward(self, images: torch.Tensor, **kwargs):
        return self.pretrained(images, **kwargs)

    def encode_views(self, images: torch.Tensor, *, return_descriptor: bool = False):
        """See :meth:`VisionTransformer.encode_views` (called as a module, see its ``forward``)."""
        return self.pretrained(images, stage="encode", return_descriptor=return_descriptor)

    def descriptor(self, tokens: torch.Tensor) -> torch.Tensor:
        """See :meth:`VisionTransformer.descriptor` (called as a module, see its ``forward``)."""
        return self.pretrained(tokens, stage="descriptor")

    def forward_tokens(self, tokens: torch.Tensor, selection: torch.Tensor | None, **kwargs
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """See :meth:`VisionTransformer.forward_tokens` (called as a module, see its ``forward``)."""
        return self.pretrained(tokens, stage="window", selection=selection, **kwargs)
