"""DA3 9-D pose encoding <-> extrinsics / intrinsics, NumPy (the host side of pose conditioning).

Encoding (per view): ``[t (3), q (4, xyzw, w >= 0), fov_h, fov_w]`` of the **camera-to-world**
pose: ``t`` is the camera centre in the world frame, ``q`` the camera-to-world rotation,
``fov_h = 2 atan((H/2) / fy)`` and ``fov_w = 2 atan((W/2) / fx)`` in radians for an ``H x W``
image (pixels of the network input). Extrinsics are world->camera ``[R | t]`` (OpenCV camera axes:
x right, y down, z forward), ``(..., 3, 4)`` or ``(..., 4, 4)``. Intrinsics ``(..., 3, 3)`` in pixels.
Decoding puts the principal point at the image centre (the encoding has no principal point).

The NumPy twin of :mod:`da3_ros.model.pose_encoding` (the torch functions the model and the
export wrapper run on tensors): the same operations in the same order and in the input's dtype
(the official pipeline and :class:`~da3_ros.geometry.pose_conditioning.PoseConditionedWindow` use
float32), so the two agree to float32 rounding (test/test_geometry_pose_encoding.py).
"""

from __future__ import annotations

import numpy as np

from .alignment import weighted_median
from .quaternion import quaternion_to_rotation_matrix, rotation_matrix_to_quaternion

__all__ = ["extrinsics_intrinsics_to_pose_encoding", "pose_encoding_to_extrinsics_intrinsics",
           "normalize_window_extrinsics", "lower_median"]


def lower_median(values) -> float:
    """Median of all entries; for an even count the lower of the two middle values (as ``torch.median``)."""
    v = np.asarray(values).ravel()
    return weighted_median(v, np.ones(v.shape, np.float64))


def _floating(a) -> np.ndarray:
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _invert_rigid(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid ``[R | t]`` given as ``(..., 3, 4)`` or ``(..., 4, 4)``; same shape out."""
    r = pose[..., :3, :3]
    t = pose[..., :3, 3:]
    rt = np.swapaxes(r, -1, -2)
    inv = np.concatenate((rt, -rt @ t), axis=-1)
    if pose.shape[-2] == 4:
        inv = np.concatenate((inv, pose[..., 3:, :]), axis=-2)
    return inv


def _check_pose(extrinsics: np.ndarray, name: str = "extrinsics") -> None:
    if extrinsics.ndim < 2 or extrinsics.shape[-1] != 4 or extrinsics.shape[-2] not in (3, 4):
        raise ValueError(f"{name} must have shape (..., 3, 4) or (..., 4, 4), got "
                         f"{tuple(extrinsics.shape)}")


def extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, image_size_hw: tuple[int, int]) -> np.ndarray:
    """World->camera extrinsics + pixel intrinsics -> ``(..., 9)`` float32 pose encoding."""
    extrinsics, intrinsics = _floating(extrinsics), _floating(intrinsics)
    _check_pose(extrinsics)
    if intrinsics.shape[-2:] != (3, 3) or intrinsics.shape[:-2] != extrinsics.shape[:-2]:
        raise ValueError(f"intrinsics must have shape {tuple(extrinsics.shape[:-2]) + (3, 3)}, got "
                         f"{tuple(intrinsics.shape)}")
    h, w = image_size_hw
    c2w = _invert_rigid(extrinsics)
    quat = rotation_matrix_to_quaternion(c2w[..., :3, :3])
    fov_h = 2 * np.arctan((h / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * np.arctan((w / 2) / intrinsics[..., 0, 0])
    return np.concatenate((c2w[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]), axis=-1).astype(np.float32)


def pose_encoding_to_extrinsics_intrinsics(encoding, image_size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(..., 9)`` pose encoding -> (world->camera ``(..., 3, 4)``, intrinsics ``(..., 3, 3)``).

    The quaternion need not be normalised. Focal lengths use ``tan(fov/2)`` clamped at 1e-6;
    the principal point is the image centre ``(W/2, H/2)``.
    """
    encoding = _floating(encoding)
    if encoding.shape[-1:] != (9,):
        raise ValueError(f"pose encoding must have shape (..., 9), got {tuple(encoding.shape)}")
    h, w = image_size_hw
    t = encoding[..., :3]
    rot = quaternion_to_rotation_matrix(encoding[..., 3:7])
    c2w = np.concatenate((rot, t[..., None]), axis=-1)
    tiny = encoding.dtype.type(1e-6)
    fy = (h / 2.0) / np.maximum(np.tan(encoding[..., 7] / 2.0), tiny)
    fx = (w / 2.0) / np.maximum(np.tan(encoding[..., 8] / 2.0), tiny)
    zero, one = np.zeros_like(fx), np.ones_like(fx)
    intrinsics = np.stack((fx, zero, zero + w / 2, zero, fy, zero + h / 2, zero, zero, one),
                          axis=-1).reshape(fx.shape + (3, 3))
    return _invert_rigid(c2w), intrinsics


def normalize_window_extrinsics(extrinsics, min_scale: float = 0.1) -> np.ndarray:
    """Express user poses as the camera encoder expects them (official API pre-normalisation).

    ``extrinsics``: ``(B, N, 4, 4)`` (or 3x4) world->camera. View 0 becomes the identity
    (``E'_s = E_s inv(E_0)``), then all translations are divided by
    ``max(median_s |camera centre_s|, min_scale)`` (the lower median over all ``B * N`` views, as
    ``torch.median``). Returns the same shape and dtype.
    """
    extrinsics = _floating(extrinsics)
    _check_pose(extrinsics)
    if extrinsics.ndim != 4:
        raise ValueError(f"extrinsics must be (B, N, 3|4, 4), got {tuple(extrinsics.shape)}")
    e = extrinsics
    if e.shape[-2] == 3:
        bottom = np.zeros(e.shape[:-2] + (1, 4), dtype=e.dtype)
        bottom[..., 0, 3] = 1
        e = np.concatenate((e, bottom), axis=-2)
    e = e @ _invert_rigid(e[:, :1])
    centres = _invert_rigid(e)[..., :3, 3]
    scale = e.dtype.type(max(lower_median(np.sqrt((centres * centres).sum(-1))), e.dtype.type(min_scale)))
    top = np.concatenate((e[..., :3, :3], e[..., :3, 3:] / scale), axis=-1)
    e = np.concatenate((top, e[..., 3:, :]), axis=-2)
    return e[..., : extrinsics.shape[-2], :]
