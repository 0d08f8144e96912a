"""Camera encoder (known poses -> camera tokens) and camera decoder (camera token -> pose encoding).

Parameter names match ``model.cam_enc.*`` and ``model.cam_dec.*``. Both run in float32.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Mlp, TransformerBlock


class CameraEncoder(nn.Module):
    """``(B, N, 9)`` pose encoding (see ``da3_ros.model.pose_encoding``) -> ``(B, N, C)`` tokens.

    pose_branch MLP (9 -> C/2 -> C) -> LayerNorm -> 4 transformer blocks over the N view tokens
    (16 heads, LayerNorm eps 1e-5, no RoPE) -> LayerNorm.
    """

    def __init__(self, dim: int, depth: int = 4, num_heads: int = 16) -> None:
        super().__init__()
        self.pose_branch = Mlp(9, dim // 2, dim)
        self.token_norm = nn.LayerNorm(dim)
        self.trunk = nn.Sequential(*[
            TransformerBlock(dim, num_heads, ln_eps=1e-5, ls_init=0.01) for _ in range(depth)])
        self.trunk_norm = nn.LayerNorm(dim)

    def forward(self, pose_encoding: torch.Tensor) -> torch.Tensor:
        x = self.token_norm(self.pose_branch(pose_encoding.float()))
        for blk in self.trunk:
            x = blk(x)
        return self.trunk_norm(x)


class CameraDecoder(nn.Module):
    """Camera token ``(B, N, 2C)`` -> pose encoding ``(B, N, 9)`` = [t, q (xyzw, unnormalised), fov_h, fov_w]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_qvec = nn.Linear(dim, 4)
        self.fc_fov = nn.Sequential(nn.Linear(dim, 2), nn.ReLU())

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        z = self.backbone(token.float())
        return torch.cat((self.fc_t(z), self.fc_qvec(z), self.fc_fov(z)), dim=-1)
