"""Quaternions in **xyzw** order (scalar last), as used by the DA3 pose encoding.

Works on torch tensors with any leading batch shape; export-friendly (no boolean-mask indexing,
no data-dependent shapes). NumPy twin: :mod:`da3_ros.geometry.quaternion`.
"""

from __future__ import annotations

import torch


def quaternion_to_rotation_matrix(q: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xyzw quaternion (need not be unit) -> ``(..., 3, 3)`` rotation matrix.

    Uses ``s = 2 / |q|^2`` so a non-normalised quaternion gives the rotation of ``q / |q|``.
    """
    if q.shape[-1] != 4:
        raise ValueError(f"expected quaternions (..., 4), got {tuple(q.shape)}")
    x, y, z, w = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    m = torch.stack((
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ), dim=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def rotation_matrix_to_quaternion(r: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation matrix -> unit xyzw quaternion with ``w >= 0``.

    Best-conditioned-candidate method: the four candidate quaternions (one per largest
    diagonal term) are formed and the one with the largest norm is picked with ``gather``.
    """
    if r.shape[-2:] != (3, 3):
        raise ValueError(f"expected rotation matrices (..., 3, 3), got {tuple(r.shape)}")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = r.reshape(r.shape[:-2] + (9,)).unbind(-1)
    q_abs = torch.sqrt(torch.clamp(torch.stack((
        1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
        1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22), dim=-1), min=0.0))
    # candidates in (w, x, y, z) order, each row scaled by 4*q_abs[k]
    cand = torch.stack((
        torch.stack((q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), dim=-1),
        torch.stack((m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20), dim=-1),
        torch.stack((m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21), dim=-1),
        torch.stack((m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2), dim=-1),
    ), dim=-2)
    cand = cand / (2.0 * torch.clamp(q_abs[..., None], min=0.1))
    best = q_abs.argmax(dim=-1)
    idx = best[..., None, None].expand(best.shape + (1, 4))
    wxyz = torch.gather(cand, -2, idx).squeeze(-2)
    xyzw = torch.cat((wxyz[..., 1:], wxyz[..., :1]), dim=-1)
    return torch.where(xyzw[..., 3:4] < 0, -xyzw, xyzw)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of xyzw quaternions (rotation ``b`` first, then ``a``)."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack((
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz), dim=-1)


def quaternion_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Inverse rotation of a unit xyzw quaternion."""
    return torch.cat((-q[..., :3], q[..., 3:]), dim=-1)
