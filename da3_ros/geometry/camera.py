"""Pinhole camera helpers: intrinsics scaling and depth -> 3-D points.

Conventions: OpenCV camera optical frame (x right, y down, z forward); ``depth`` is the z-distance
along the optical axis; intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels with
continuous pixel coordinates whose origin is the top-left image **corner** (so the image centre is
``(W/2, H/2)``, as DA3 predicts, and resizing an image by ``s`` scales ``fx, cx`` by ``s``). Pixel
``(u, v)`` (column, row) is sampled at its centre ``(u + 0.5, v + 0.5)`` by default.
Extrinsics are world->camera ``[R | t]`` ``(..., 3, 4)`` or ``(..., 4, 4)``.
Functions accept torch tensors (any leading batch shape) or NumPy arrays (then return NumPy).
"""

from __future__ import annotations

import numpy as np
import torch

PIXEL_CENTER = 0.5
"""Offset of a pixel's centre from its integer index (0.0 reproduces the official GLB export)."""


def _to_torch(x):
    return (torch.from_numpy(np.asarray(x)), True) if isinstance(x, np.ndarray) else (x, False)


def scale_intrinsics(intrinsics, from_hw: tuple[int, int], to_hw: tuple[int, int]):
    """Intrinsics of an image resized from ``from_hw`` to ``to_hw`` (row 0 by the width ratio,
    row 1 by the height ratio). Works for ``(..., 3, 3)`` tensors or arrays."""
    k, was_np = _to_torch(intrinsics)
    if k.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must have shape (..., 3, 3), got {tuple(k.shape)}")
    sx, sy = to_hw[1] / from_hw[1], to_hw[0] / from_hw[0]
    scale = torch.tensor([[sx], [sy], [1.0]], dtype=k.dtype)
    out = k * scale.to(k.device)
    return out.numpy() if was_np else out


def pixel_rays(intrinsics, height: int, width: int, pixel_center: float = PIXEL_CENTER):
    """``K^-1 [u + c, v + c, 1]`` for every pixel: ``(..., H, W, 3)`` with z = 1."""
    k, was_np = _to_torch(intrinsics)
    if k.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must have shape (..., 3, 3), got {tuple(k.shape)}")
    k = k.to(torch.float64) if was_np else k
    u = torch.arange(width, dtype=k.dtype, device=k.device) + pixel_center
    v = torch.arange(height, dtype=k.dtype, device=k.device) + pixel_center
    fx, fy = k[..., 0, 0, None, None], k[..., 1, 1, None, None]
    cx, cy = k[..., 0, 2, None, None], k[..., 1, 2, None, None]
    skew = k[..., 0, 1, None, None]
    y = (v[:, None] - cy) / fy
    x = (u[None, :] - cx - skew * y) / fx
    x, y = torch.broadcast_tensors(x, y)
    rays = torch.stack((x, y, torch.ones_like(x)), dim=-1)
    return rays.numpy() if was_np else rays


def depth_to_points(depth, intrinsics, extrinsics=None, pixel_center: float = PIXEL_CENTER):
    """Unproject a depth map ``(..., H, W)`` to points ``(..., H, W, 3)``.

    ``intrinsics`` ``(..., 3, 3)`` must refer to the depth map's resolution; to unproject at
    another resolution first use :func:`scale_intrinsics`. Without ``extrinsics`` the points are
    in the camera frame; with world->camera ``extrinsics`` they are mapped to the world frame
    (``X_w = R^T (X_c - t)``).
    """
    d, was_np = _to_torch(depth)
    k, _ = _to_torch(intrinsics)
    if d.ndim < 2:
        raise ValueError(f"depth must have shape (..., H, W), got {tuple(d.shape)}")
    if k.shape[:-2] != d.shape[:-2]:
        raise ValueError(f"intrinsics batch shape {tuple(k.shape[:-2])} does not match depth "
                         f"{tuple(d.shape[:-2])}")
    k = k.to(d.dtype)
    pts = pixel_rays(k, d.shape[-2], d.shape[-1], pixel_center) * d[..., None]
    if extrinsics is not None:
        e, _ = _to_torch(extrinsics)
        if e.shape[-1] != 4 or e.shape[-2] not in (3, 4) or e.shape[:-2] != d.shape[:-2]:
            raise ValueError(f"extrinsics must have shape {tuple(d.shape[:-2])} + (3|4, 4), got "
                             f"{tuple(e.shape)}")
        e = e.to(d.dtype)
        r, t = e[..., :3, :3], e[..., :3, 3]
        pts = torch.einsum("...ji,...hwj->...hwi", r, pts - t[..., None, None, :])
    return pts.numpy() if was_np else pts
