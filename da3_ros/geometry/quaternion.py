"""Quaternions in **xyzw** order (scalar last) <-> rotation matrices, NumPy, any leading batch shape.

The NumPy twin of :mod:`da3_ros.model.quaternion` (the torch code inside the model and the exported
graph): the same formulas in the same order, computed in the input's floating dtype (float32 in,
float32 out), so a pose encoding built here equals the torch one to float32 rounding. The single-matrix
float64 helpers of :mod:`da3_ros.geometry.transforms` (``rotation_to_quaternion_xyzw``,
``quaternion_xyzw_to_rotation``) are built on these two functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quaternion_to_rotation_matrix", "rotation_matrix_to_quaternion"]


def _floating(a) -> np.ndarray:
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def quaternion_to_rotation_matrix(q) -> np.ndarray:
    """``(..., 4)`` xyzw quaternion (need not be unit) -> ``(..., 3, 3)`` rotation matrix.

    Uses ``s = 2 / |q|^2`` so a non-normalised quaternion gives the rotation of ``q / |q|``.
    """
    q = _floating(q)
    if q.shape[-1:] != (4,):
        raise ValueError(f"expected quaternions (..., 4), got {tuple(q.shape)}")
    x, y, z, w = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    m = np.stack((
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ), axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def rotation_matrix_to_quaternion(r) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrix -> unit xyzw quaternion with ``w >= 0``.

    Best-conditioned-candidate method: the four candidate quaternions (one per largest diagonal
    term) are formed and the one with the largest norm is picked (first one on a tie).
    """
    r = _floating(r)
    if r.shape[-2:] != (3, 3):
        raise ValueError(f"expected rotation matrices (..., 3, 3), got {tuple(r.shape)}")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = np.moveaxis(r.reshape(r.shape[:-2] + (9,)), -1, 0)
    q_abs = np.sqrt(np.maximum(np.stack((
        1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
        1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22), axis=-1), 0.0))
    # candidates in (w, x, y, z) order, each row scaled by 4*q_abs[k]
    cand = np.stack((
        np.stack((q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), axis=-1),
        np.stack((m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20), axis=-1),
        np.stack((m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21), axis=-1),
        np.stack((m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2), axis=-1),
    ), axis=-2)
    cand = cand / (2.0 * np.maximum(q_abs[..., None], q_abs.dtype.type(0.1)))
    best = q_abs.argmax(axis=-1)
    wxyz = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    xyzw = np.concatenate((wxyz[..., 1:], wxyz[..., :1]), axis=-1)
    return np.where(xyzw[..., 3:4] < 0, -xyzw, xyzw)
