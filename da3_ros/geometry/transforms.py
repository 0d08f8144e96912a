"""SE(3) / Sim(3) / SO(3) helpers on plain 4x4 / 3x3 NumPy matrices: the project's one home for them.

Conventions
-----------
- A transform ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``:
  ``p_a = T_a_b @ p_b`` (homogeneous column vectors). Composition: ``T_a_c = T_a_b @ T_b_c``.
- SE(3): ``[[R, t], [0, 1]]`` with ``R`` a rotation (det +1).
- Sim(3): ``[[s R, t], [0, 1]]`` with scale ``s > 0``; it maps ``p -> s R p + t``.
- Camera extrinsics are world->camera ``[R|t]`` 3x4 (OpenCV optical axes: x right, y down,
  z forward). Camera-to-world poses are always named ``T_world_cam`` / ``c2w``.
- All functions accept float32 or float64 input and compute in float64.
- One rigidity rule (:func:`check_rigid_transform`, :func:`is_rigid_transform`): finite, rotation block
  proper and orthonormal and last row ``[0, 0, 0, 1]``, each within :data:`RIGID_TOLERANCE`.
- SO(3) exp / log: :func:`rotation_from_axis_angle` / :func:`rotation_log` (rotation vector = axis * angle).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .quaternion import quaternion_to_rotation_matrix, rotation_matrix_to_quaternion

__all__ = [
    "RIGID_TOLERANCE",
    "check_rigid_transform",
    "is_rigid_transform",
    "rigid_transform_error",
    "make_transform",
    "decompose_transform",
    "invert_transform",
    "compose",
    "transform_points",
    "transform_scale",
    "rotation_angle",
    "rotation_angle_deg",
    "rotation_from_axis_angle",
    "rotation_log",
    "project_to_rotation",
    "extrinsics_to_T_world_cam",
    "T_world_cam_to_extrinsics",
    "camera_centre_from_extrinsics",
    "relative_motion",
    "rotation_to_quaternion_xyzw",
    "quaternion_xyzw_to_rotation",
    "slerp_quaternion_xyzw",
]


RIGID_TOLERANCE = 1e-4
"""Largest accepted ``max |R^T R - I|`` and ``max |last row - [0, 0, 0, 1]|`` of a rigid transform.

Poses computed in float64 are orthonormal to ~1e-15, and float32 ones (model outputs, float32 storage)
to a few 1e-7; 1e-4 accepts both with a wide margin, while a Sim(3) with ``|s - 1| > 5e-5``, a shear or a
garbage matrix fails (a rotation error of 1e-4 moves a point 10 m away by at most 1 mm)."""


def rigid_transform_error(T: np.ndarray) -> float:
    """``max(|R^T R - I|, |last row - [0, 0, 0, 1]|)`` over a (stack of) 4x4 matrices (0 for an empty stack)."""
    T = np.asarray(T, dtype=np.float64)
    if T.size == 0:
        return 0.0
    R = T[..., :3, :3]
    orthonormal = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max()
    last_row = np.abs(T[..., 3, :] - [0.0, 0.0, 0.0, 1.0]).max()
    return float(max(orthonormal, last_row))


def check_rigid_transform(T: np.ndarray, name: str = "transform") -> np.ndarray:
    """A float64 copy of ``T`` (4x4, or a stack ``(..., 4, 4)``) after checking it is a rigid SE(3) transform.

    Rigid: finite; rotation block orthonormal (``max |R^T R - I|``) and last row ``[0, 0, 0, 1]``, both within
    :data:`RIGID_TOLERANCE`; ``det R > 0`` (no reflection). Raises ``ValueError`` naming ``name`` and the
    numbers otherwise. The returned copy's last row is exactly ``[0, 0, 0, 1]``.
    """
    T = np.array(T, dtype=np.float64)
    if T.ndim < 2 or T.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must be a 4x4 transform (or a stack of them), got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} contains NaN/Inf")
    if T.size == 0:
        return T
    err = rigid_transform_error(T)
    det = float(np.linalg.det(T[..., :3, :3]).min())
    if err > RIGID_TOLERANCE or not det > 0:
        R = T[..., :3, :3]
        orthonormal = float(np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max())
        last_row = float(np.abs(T[..., 3, :] - [0.0, 0.0, 0.0, 1.0]).max())
        raise ValueError(f"{name} is not a rigid SE(3) transform: its rotation must be proper and orthonormal and "
                         f"its last row [0, 0, 0, 1] (max |R^T R - I| = {orthonormal:.3g}, min det R = {det:.6g}, "
                         f"max |last row - [0, 0, 0, 1]| = {last_row:.3g}; tolerance {RIGID_TOLERANCE:g})")
    T[..., 3, :] = [0.0, 0.0, 0.0, 1.0]
    return T


def is_rigid_transform(T: np.ndarray) -> bool:
    """Whether :func:`check_rigid_transform` accepts ``T`` (shape, finiteness and rigidity)."""
    try:
        check_rigid_transform(T)
    except ValueError:
        return False
    return True


def _as_matrix(T: np.ndarray, name: str = "T") -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape == (3, 4):
        T = np.vstack([T, [0.0, 0.0, 0.0, 1.0]])
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 (or 3x4) transform, got shape {T.shape}")
    return T


def make_transform(R: np.ndarray, t: np.ndarray, s: float = 1.0) -> np.ndarray:
    """Build the 4x4 ``[[s R, t], [0, 1]]`` (Sim(3); SE(3) when ``s == 1``)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3):
        raise ValueError(f"R must be 3x3, got shape {R.shape}")
    if t.shape != (3,):
        raise ValueError(f"t must have 3 elements, got shape {t.shape}")
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"scale must be a finite positive number, got {s}")
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = t
    return T


def transform_scale(T: np.ndarray) -> float:
    """Scale ``s`` of a Sim(3) matrix (cube root of det of the 3x3 block; 1 for SE(3))."""
    T = _as_matrix(T)
    det = float(np.linalg.det(T[:3, :3]))
    if det <= 0:
        raise ValueError(f"transform has a non-positive determinant ({det:.3g}); not a Sim(3)")
    return det ** (1.0 / 3.0)


def decompose_transform(T: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """Split a Sim(3) matrix into ``(R, t, s)`` with ``T = [[s R, t], [0, 1]]``."""
    T = _as_matrix(T)
    s = transform_scale(T)
    return T[:3, :3] / s, T[:3, 3].copy(), s


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Closed-form inverse of an SE(3) or Sim(3) matrix: ``[[R^T/s, -R^T t/s], [0, 1]]``."""
    R, t, s = decompose_transform(T)
    Ti = np.eye(4)
    Ti[:3, :3] = R.T / s
    Ti[:3, 3] = -(R.T @ t) / s
    return Ti


def compose(*transforms: np.ndarray) -> np.ndarray:
    """Product ``T_1 @ T_2 @ ... @ T_k`` of 4x4 (or 3x4) transforms."""
    if not transforms:
        raise ValueError("compose needs at least one transform")
    out = _as_matrix(transforms[0], "transforms[0]")
    for i, T in enumerate(transforms[1:], start=1):
        out = out @ _as_matrix(T, f"transforms[{i}]")
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points of shape (..., 3); returns float64 (..., 3)."""
    T = _as_matrix(T)
    P = np.asarray(points, dtype=np.float64)
    if P.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {P.shape}")
    return P @ T[:3, :3].T + T[:3, 3]


def rotation_angle(R: np.ndarray) -> float:
    """Rotation angle in radians, in [0, pi], of a 3x3 rotation (or the rotation of a 4x4 SE(3))."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (4, 4) or R.shape == (3, 4):
        R, _, _ = decompose_transform(R)
    if R.shape != (3, 3):
        raise ValueError(f"R must be 3x3, got shape {R.shape}")
    c = (np.trace(R) - 1.0) / 2.0
    # arccos is ill-conditioned near 0; use atan2 of the skew part norm for accuracy.
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0
    return float(np.arctan2(np.linalg.norm(w), np.clip(c, -1.0, 1.0)))


def rotation_angle_deg(R: np.ndarray) -> float:
    """``rotation_angle`` in degrees."""
    return float(np.degrees(rotation_angle(R)))


def rotation_from_axis_angle(axis_angle: np.ndarray) -> np.ndarray:
    """SO(3) exponential (Rodrigues): rotation matrix of the rotation vector ``axis * angle`` (radians)."""
    v = np.asarray(axis_angle, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(v))
    if theta < 1e-12:
        K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        return np.eye(3) + K
    k = v / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1.0 - np.cos(theta)) * (K @ K)


def rotation_log(R: np.ndarray) -> np.ndarray:
    """SO(3) logarithm: the rotation vector (axis * angle, radians, angle in [0, pi]) of a 3x3 rotation.

    The inverse of :func:`rotation_from_axis_angle`; stable near 0 (first order) and near pi (axis from the
    symmetric part, its sign from the skew part).
    """
    R = np.asarray(R, np.float64)
    angle = rotation_angle(R)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-6:
        return 0.5 * w
    if np.pi - angle < 1e-4:   # near pi: axis from the symmetric part
        B = 0.5 * (R + np.eye(3))
        axis = np.sqrt(np.clip(np.diag(B), 0.0, None))
        k = int(np.argmax(axis))
        axis = B[k] / max(axis[k], 1e-12)
        axis /= np.linalg.norm(axis)
        if axis @ w < 0:
            axis = -axis
        return angle * axis
    return angle / (2.0 * np.sin(angle)) * w


def project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Nearest rotation matrix (Frobenius norm) to a 3x3 matrix, via SVD with det correction."""
    U, _, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def extrinsics_to_T_world_cam(extrinsics: np.ndarray) -> np.ndarray:
    """World->camera extrinsics (..., 3, 4) or (..., 4, 4) -> camera-to-world poses (..., 4, 4).

    Assumes a rigid (SE(3)) extrinsic, as models return; the rotation block is used as given.
    """
    E = np.asarray(extrinsics, dtype=np.float64)
    if E.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"extrinsics must have shape (..., 3, 4) or (..., 4, 4), got {E.shape}")
    R = E[..., :3, :3]
    t = E[..., :3, 3]
    Rt = np.swapaxes(R, -1, -2)
    out = np.zeros(E.shape[:-2] + (4, 4))
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    out[..., 3, 3] = 1.0
    return out


def T_world_cam_to_extrinsics(T_world_cam: np.ndarray) -> np.ndarray:
    """Camera-to-world poses (..., 4, 4) -> world->camera extrinsics (..., 3, 4)."""
    return extrinsics_to_T_world_cam(T_world_cam)[..., :3, :]


def camera_centre_from_extrinsics(extrinsics: np.ndarray) -> np.ndarray:
    """Camera centres in the world frame, ``-R^T t``, for extrinsics of shape (..., 3, 4)."""
    return extrinsics_to_T_world_cam(extrinsics)[..., :3, 3]


def relative_motion(T_world_a: np.ndarray, T_world_b: np.ndarray) -> Tuple[float, float]:
    """Translation distance (world units) and rotation angle (radians) between two SE(3) poses."""
    T_a_b = invert_transform(T_world_a) @ _as_matrix(T_world_b)
    return float(np.linalg.norm(T_a_b[:3, 3])), rotation_angle(T_a_b[:3, :3])


def rotation_to_quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """3x3 rotation -> unit quaternion (x, y, z, w), w >= 0 (best-conditioned branch, normalised; float64).

    The single-matrix float64 form of :func:`da3_ros.geometry.quaternion.rotation_matrix_to_quaternion`.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"R must be 3x3, got shape {R.shape}")
    q = rotation_matrix_to_quaternion(R)
    q = q / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_xyzw_to_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w), scalar last, -> 3x3 rotation; ``q`` is normalised first (must be non-zero).

    The single-quaternion float64 form of :func:`da3_ros.geometry.quaternion.quaternion_to_rotation_matrix`
    (whose torch twin, ``da3_ros.model.quaternion``, runs inside the model).
    """
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if q.shape != (4,):
        raise ValueError(f"quaternion must have 4 elements (x, y, z, w), got shape {q.shape}")
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion must be finite and non-zero, got {q.tolist()}")
    return quaternion_to_rotation_matrix(q / n)


def slerp_quaternion_xyzw(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical linear interpolation of unit xyzw quaternions along the shorter arc.

    ``alpha`` = 0 gives ``q0``, 1 gives ``q1`` (or ``-q1``, the same rotation); the result is a unit
    quaternion. Nearly parallel inputs fall back to normalised linear interpolation.
    """
    a = np.asarray(q0, dtype=np.float64).reshape(4)
    b = np.asarray(q1, dtype=np.float64).reshape(4)
    dot = float(a @ b)
    if dot < 0.0:  # q and -q are the same rotation: take the shorter arc
        b, dot = -b, -dot
    if dot > 1.0 - 1e-12:
        q = a + alpha * (b - a)
    else:
        theta = np.arccos(min(dot, 1.0))
        sin_theta = np.sin(theta)
        q = (np.sin((1.0 - alpha) * theta) / sin_theta) * a + (np.sin(alpha * theta) / sin_theta) * b
    return q / np.linalg.norm(q)
