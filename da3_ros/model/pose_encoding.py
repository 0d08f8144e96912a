"""DA3 9-D pose encoding <-> extrinsics / intrinsics.

Encoding (per view): ``[t (3), q (4, xyzw, w >= 0), fov_h, fov_w]`` of the **camera-to-world**
pose: ``t`` is the camera centre in the world frame, ``q`` the camera-to-world rotation,
``fov_h = 2 atan((H/2) / fy)`` and ``fov_w = 2 atan((W/2) / fx)`` in radians for an ``H x W``
image (pixels of the network input). Extrinsics are world->camera ``[R | t]`` (OpenCV camera axes:
x right, y down, z forward), ``(..., 3, 4)`` or ``(..., 4, 4)``. Intrinsics ``(..., 3, 3)`` in pixels.
Decoding puts the principal point at the image centre (the encoding has no principal point).

These are the torch functions the model (camera decoder output) and tests run on tensors; the host
side (pose-conditioned windows, the synthetic oracle) uses their NumPy twin
:mod:`da3_ros.geometry.pose_encoding`, which computes the same operations in the same dtype.
"""

from __future__ import annotations

import torch

from .quaternion import quaternion_to_rotation_matrix, rotation_matrix_to_quaternion


def _invert_rigid(pose: torch.Tensor) -> torch.Tensor:
    """Inverse of a rigid ``[R | t]`` given as ``(..., 3, 4)`` or ``(..., 4, 4)``; same shape out."""
    r = pose[..., :3, :3]
    t = pose[..., :3, 3:]
    rt = r.transpose(-1, -2)
    inv = torch.cat((rt, -rt @ t), dim=-1)
    if pose.shape[-2] == 4:
        inv = torch.cat((inv, pose[..., 3:, :]), dim=-2)
    return inv


def _check_pose(extrinsics: torch.Tensor, name: str = "extrinsics") -> None:
    if extrinsics.ndim < 2 or extrinsics.shape[-1] != 4 or extrinsics.shape[-2] not in (3, 4):
        raise ValueError(f"{name} must have shape (..., 3, 4) or (..., 4, 4), got "
                         f"{tuple(extrinsics.shape)}")


def extrinsics_intrinsics_to_pose_encoding(extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                                           image_size_hw: tuple[int, int]) -> torch.Tensor:
    """World->camera extrinsics + pixel intrinsics -> ``(..., 9)`` float32 pose encoding."""
    _check_pose(extrinsics)
    if intrinsics.shape[-2:] != (3, 3) or intrinsics.shape[:-2] != extrinsics.shape[:-2]:
        raise ValueError(f"intrinsics must have shape {tuple(extrinsics.shape[:-2]) + (3, 3)}, got "
                         f"{tuple(intrinsics.shape)}")
    h, w = image_size_hw
    c2w = _invert_rigid(extrinsics)
    quat = rotation_matrix_to_quaternion(c2w[..., :3, :3])
    fov_h = 2 * torch.atan((h / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((w / 2) / intrinsics[..., 0, 0])
    return torch.cat((c2w[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]), dim=-1).float()


def pose_encoding_to_extrinsics_intrinsics(encoding: torch.Tensor, image_size_hw: tuple[int, int]
                                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., 9)`` pose encoding -> (world->camera ``(..., 3, 4)``, intrinsics ``(..., 3, 3)``).

    The quaternion need not be normalised. Focal lengths use ``tan(fov/2)`` clamped at 1e-6;
    the principal point is the image centre ``(W/2, H/2)``.
    """
    if encoding.shape[-1] != 9:
        raise ValueError(f"pose encoding must have shape (..., 9), got {tuple(encoding.shape)}")
    h, w = image_size_hw
    t = encoding[..., :3]
    rot = quaternion_to_rotation_matrix(encoding[..., 3:7])
    c2w = torch.cat((rot, t[..., None]), dim=-1)
    fy = (h / 2.0) / torch.clamp(torch.tan(encoding[..., 7] / 2.0), min=1e-6)
    fx = (w / 2.0) / torch.clamp(torch.tan(encoding[..., 8] / 2.0), min=1e-6)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    intrinsics = torch.stack((fx, zero, zero + w / 2, zero, fy, zero + h / 2, zero, zero, one),
                             dim=-1).reshape(fx.shape + (3, 3))
    return _invert_rigid(c2w), intrinsics


def normalize_window_extrinsics(extrinsics: torch.Tensor, min_scale: float = 0.1) -> torch.Tensor:
    """Express user poses as the camera encoder expects them (official API pre-normalisation).

    ``extrinsics``: ``(B, N, 4, 4)`` (or 3x4) world->camera. View 0 becomes the identity
    (``E'_s = E_s inv(E_0)``), then all translations are divided by
    ``max(median_s |camera centre_s|, min_scale)``. Returns the same shape.
    """
    _check_pose(extrinsics)
    if extrinsics.ndim != 4:
        raise ValueError(f"extrinsics must be (B, N, 3|4, 4), got {tuple(extrinsics.shape)}")
    e = extrinsics
    if e.shape[-2] == 3:
        bottom = torch.zeros(e.shape[:-2] + (1, 4), dtype=e.dtype, device=e.device)
        bottom[..., 0, 3] = 1
        e = torch.cat((e, bottom), dim=-2)
    e = e @ _invert_rigid(e[:, :1])
    centres = _invert_rigid(e)[..., :3, 3]
    scale = torch.clamp(torch.median(centres.norm(dim=-1)), min=min_scale)
    top = torch.cat((e[..., :3, :3], e[..., :3, 3:] / scale), dim=-1)
    e = torch.cat((top, e[..., 3:, :]), dim=-2)
    return e[..., : extrinsics.shape[-2], :]
