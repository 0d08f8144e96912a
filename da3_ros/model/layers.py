"""Transformer building blocks shared by the DA3 backbone and the camera encoder.

Module and parameter names follow the released checkpoints (``norm1``, ``attn.qkv``,
``attn.q_norm``, ``ls1.gamma``, ``mlp.fc1`` / ``mlp.w12`` ...). Tokens are ``(batch, tokens, C)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerScale(nn.Module):
    """Per-channel residual scale ``x * gamma``."""

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))`` with the exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """``w3(silu(a) * b)`` with ``[a, b] = w12(x)`` split in halves (DINOv2 giant FFN)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


def rotate_half_pairs(t: torch.Tensor) -> torch.Tensor:
    """2-D RoPE rotation of the last dim, split in two halves (y, x) rotated independently.

    For each half ``h = [h1, h2]`` (equal quarters of the full dim) returns ``[-h2, h1]``.
    """
    q = t.shape[-1] // 4
    t1, t2, t3, t4 = t.split(q, dim=-1)
    return torch.cat((-t2, t1, -t4, t3), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head qk LayerNorm and 2-D RoPE.

    RoPE is given as precomputed ``(cos, sin)`` tables broadcastable to ``(batch, heads, T, d)``.
    Uses ``F.scaled_dot_product_attention`` (no mask).
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            cos, sin = rope[0].to(q.dtype), rope[1].to(q.dtype)
            q = q * cos + rotate_half_pairs(q) * sin
            k = k * cos + rotate_half_pairs(k) * sin
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x += ls1(attn(norm1(x)))``; ``x += ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, *, ffn: str = "mlp", ffn_hidden: int | None = None,
                 qk_norm: bool = False, ln_eps: float = 1e-6, ls_init: float = 1.0) -> None:
        super().__init__()
        hidden = ffn_hidden or 4 * dim
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim, ls_init)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        if ffn == "mlp":
            self.mlp: nn.Module = Mlp(dim, hidden)
        elif ffn == "swiglu":
            self.mlp = SwiGLU(dim, hidden)
        else:
            raise ValueError(f"unknown ffn type {ffn!r} (expected 'mlp' or 'swiglu')")
        self.ls2 = LayerScale(dim, ls_init)

    def forward(self, x: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))
