"""Size-dependent constant tables: resized positional embedding, 2-D RoPE, UV embeddings.

All functions are meant to be evaluated once per network input size (H, W) outside any traced
graph; the results are constants of an exported graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import PATCH_SIZE


def resize_pos_embed(pos_embed: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Resize the learned ``(1, 1 + M*M, C)`` table to a ``ph x pw`` patch grid.

    Reproduces the official DINOv2 rule: slot 0 (cls) is kept, the M x M patch part is resized
    bicubically (A = -0.75, align_corners=False, no antialias) in float32 with an explicit
    **scale factor** ``((ph + 0.1) / M, (pw + 0.1) / M)`` -- not an output size, which samples a
    slightly different grid. A square grid of the trained size is returned unchanged.
    Returns ``(1, 1 + ph*pw, C)`` in the dtype of ``pos_embed``.
    """
    n = pos_embed.shape[1] - 1
    m = int(math.isqrt(n))
    if m * m != n:
        raise ValueError(f"pos_embed has {n} patch slots, not a square grid")
    if ph * pw == n and ph == pw:
        return pos_embed
    dtype = pos_embed.dtype
    pe = pos_embed.float()
    dim = pe.shape[-1]
    grid = pe[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((ph + 0.1) / m, (pw + 0.1) / m), mode="bicubic",
                         antialias=False)
    if tuple(grid.shape[-2:]) != (ph, pw):
        raise RuntimeError(f"pos_embed resize produced {tuple(grid.shape[-2:])}, expected {(ph, pw)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, ph * pw, dim)
    return torch.cat((pe[:, :1], grid), dim=1).to(dtype)


def rope_positions(ph: int, pw: int, spatial: bool) -> torch.Tensor:
    """Integer (y, x) RoPE position of every token of one view, ``(1 + ph*pw, 2)``.

    Token 0 (the cls / camera token) is at (0, 0). With ``spatial`` (local, within-view blocks)
    the patch at row r, column c is at (r + 1, c + 1); otherwise (global blocks) every patch is at
    (1, 1), so RoPE carries no position between patches.
    """
    if spatial:
        ys, xs = torch.meshgrid(torch.arange(ph), torch.arange(pw), indexing="ij")
        patches = torch.stack((ys.reshape(-1), xs.reshape(-1)), dim=-1) + 1
    else:
        patches = torch.ones(ph * pw, 2, dtype=torch.long)
    return torch.cat((torch.zeros(1, 2, dtype=torch.long), patches), dim=0)


def rope_tables(positions: torch.Tensor, head_dim: int,
                base: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables ``(T, head_dim)`` for 2-D rotate-half RoPE of the given positions.

    The first half of each head is rotated with y, the second half with x. For a half of size
    ``m``: ``inv_freq_j = base^(-2j/m)``, angle ``p * inv_freq`` duplicated to length m.
    """
    if head_dim % 4:
        raise ValueError(f"RoPE needs a head dim divisible by 4, got {head_dim}")
    m = head_dim // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, m, 2).float() / m))
    tables_cos, tables_sin = [], []
    for axis in range(2):
        ang = positions[:, axis].float()[:, None] * inv_freq[None, :]
        ang = torch.cat((ang, ang), dim=-1)
        tables_cos.append(ang.cos())
        tables_sin.append(ang.sin())
    return torch.cat(tables_cos, dim=-1), torch.cat(tables_sin, dim=-1)


def sincos_embed_1d(pos: torch.Tensor, dim: int, omega_0: float = 100.0) -> torch.Tensor:
    """``[sin(p * w_k), cos(p * w_k)]`` with ``w_k = omega_0^(-k/(dim/2))``: ``(M,) -> (M, dim)``."""
    omega = torch.arange(dim // 2, dtype=torch.float32)
    omega /= dim / 2.0
    omega = 1.0 / omega_0 ** omega
    out = pos.reshape(-1)[:, None] * omega[None, :]
    return torch.cat((torch.sin(out), torch.cos(out)), dim=1)


def uv_embedding(h: int, w: int, channels: int, aspect: float, ratio: float = 0.1) -> torch.Tensor:
    """UV positional embedding ``(1, channels, h, w)`` added to DPT feature maps, times ``ratio``.

    The map spans the image plane normalised by its diagonal (``aspect = W / H`` of the network
    input); pixel centres ``u_j``/``v_i`` are linspaces over ``+-span * (n-1)/n``. Channels: first
    half encodes u (x), second half v (y).
    """
    diag = (aspect ** 2 + 1.0) ** 0.5
    sx, sy = aspect / diag, 1.0 / diag
    xs = torch.linspace(-sx * (w - 1) / w, sx * (w - 1) / w, steps=w, dtype=torch.float32)
    ys = torch.linspace(-sy * (h - 1) / h, sy * (h - 1) / h, steps=h, dtype=torch.float32)
    uu, vv = torch.meshgrid(xs, ys, indexing="xy")
    emb = torch.cat((sincos_embed_1d(uu.reshape(-1), channels // 2),
                     sincos_embed_1d(vv.reshape(-1), channels // 2)), dim=-1)
    return (emb.view(h, w, channels) * ratio).permute(2, 0, 1)[None]


def patch_grid(height: int, width: int) -> tuple[int, int]:
    """``(H/14, W/14)``; raise ``ValueError`` if a side is not a positive multiple of 14."""
    if height <= 0 or width <= 0 or height % PATCH_SIZE or width % PATCH_SIZE:
        raise ValueError(
            f"network input size {height}x{width} must have both sides positive multiples of "
            f"{PATCH_SIZE} (use da3_ros.pipeline.network_input.NetworkInputMapping to resize)")
    return height // PATCH_SIZE, width // PATCH_SIZE
