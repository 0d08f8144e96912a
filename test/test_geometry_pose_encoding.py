"""Quaternions and the DA3 9-D pose encoding, against closed forms and the official functions; the NumPy
twins in geometry/ against the torch functions in model/."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from da3_ros.geometry import pose_encoding as np_pose_encoding
from da3_ros.geometry import quaternion as np_quaternion
from da3_ros.geometry.pose_conditioning import MIN_NORMALISATION_DISTANCE, PoseConditionedWindow
from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle

from da3_ros.model.pose_encoding import (extrinsics_intrinsics_to_pose_encoding,
                                         normalize_window_extrinsics,
                                         pose_encoding_to_extrinsics_intrinsics)
from da3_ros.model.quaternion import (quaternion_conjugate, quaternion_multiply,
                                      quaternion_to_rotation_matrix,
                                      rotation_matrix_to_quaternion)


def _random_quats(n, seed=0):
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def _axis_angle_quat(axis, angle):
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    return torch.cat((axis * math.sin(angle / 2), torch.tensor([math.cos(angle / 2)], dtype=torch.float64)))


def test_quaternion_matrix_roundtrip_including_all_branches():
    q = torch.cat((_random_quats(200), torch.stack([
        _axis_angle_quat(ax, ang) for ax in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0])
        for ang in (0.0, 1e-4, math.pi / 2, math.pi - 1e-6, math.pi)])))
    r = quaternion_to_rotation_matrix(q)
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(len(q), dtype=torch.float64))
    q2 = rotation_matrix_to_quaternion(r)
    assert (q2[:, 3] >= 0).all()
    # same rotation (q and -q), recovered up to sign
    assert torch.allclose(quaternion_to_rotation_matrix(q2), r, atol=1e-9)
    assert torch.allclose((q2 * q).sum(-1).abs(), torch.ones(len(q), dtype=torch.float64), atol=1e-9)


def test_quaternion_convention_xyzw_and_product():
    q = _axis_angle_quat([0, 0, 1], math.pi / 2)  # +90 deg about z
    r = quaternion_to_rotation_matrix(q)
    assert torch.allclose(r @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    a, b = _random_quats(10, 1), _random_quats(10, 2)
    ab = quaternion_multiply(a, b)
    assert torch.allclose(quaternion_to_rotation_matrix(ab),
                          quaternion_to_rotation_matrix(a) @ quaternion_to_rotation_matrix(b))
    ident = quaternion_multiply(a, quaternion_conjugate(a))
    assert torch.allclose(ident, torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(10, 4))
    # un-normalised quaternions give the rotation of q/|q|
    assert torch.allclose(quaternion_to_rotation_matrix(3.0 * a), quaternion_to_rotation_matrix(a))


def test_matches_official_quaternion_functions():
    from depth_anything_3.model.utils.transform import mat_to_quat, quat_to_mat
    q = _random_quats(50, 3).float()
    assert torch.allclose(quaternion_to_rotation_matrix(q), quat_to_mat(q), atol=1e-6)
    r = quat_to_mat(q)
    with torch.no_grad():
        assert torch.allclose(rotation_matrix_to_quaternion(r), mat_to_quat(r), atol=1e-6)


def _poses(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    w2c = torch.eye(4).repeat(1, n, 1, 1)
    w2c[..., :3, :3] = quaternion_to_rotation_matrix(torch.randn(1, n, 4, generator=g))
    w2c[..., :3, 3] = torch.randn(1, n, 3, generator=g) * 2
    k = torch.zeros(1, n, 3, 3)
    k[..., 0, 0] = 300 + 50 * torch.rand(1, n, generator=g)
    k[..., 1, 1] = 280 + 50 * torch.rand(1, n, generator=g)
    k[..., 0, 2], k[..., 1, 2], k[..., 2, 2] = 126.0, 70.0, 1.0
    return w2c, k


def test_pose_encoding_roundtrip_and_layout():
    h, w = 140, 252
    w2c, k = _poses(5)
    enc = extrinsics_intrinsics_to_pose_encoding(w2c, k, (h, w))
    assert enc.shape == (1, 5, 9) and enc.dtype == torch.float32
    c2w = torch.linalg.inv(w2c)
    assert torch.allclose(enc[..., :3], c2w[..., :3, 3], atol=1e-5)  # camera centre
    assert torch.allclose(enc[..., 7], 2 * torch.atan(h / 2 / k[..., 1, 1]))
    assert torch.allclose(enc[..., 8], 2 * torch.atan(w / 2 / k[..., 0, 0]))
    e2, k2 = pose_encoding_to_extrinsics_intrinsics(enc, (h, w))
    assert e2.shape == (1, 5, 3, 4) and k2.shape == (1, 5, 3, 3)
    assert torch.allclose(e2, w2c[..., :3, :], atol=1e-5)
    assert torch.allclose(k2, k, rtol=1e-5)
    # 3x4 input gives the same encoding
    assert torch.allclose(extrinsics_intrinsics_to_pose_encoding(w2c[..., :3, :], k, (h, w)), enc)


def test_pose_encoding_matches_official():
    from depth_anything_3.model.utils.transform import (extri_intri_to_pose_encoding,
                                                        pose_encoding_to_extri_intri)
    from depth_anything_3.utils.geometry import affine_inverse
    h, w = 140, 252
    w2c, k = _poses(4, seed=1)
    with torch.no_grad():
        ref = extri_intri_to_pose_encoding(affine_inverse(w2c), k, (h, w))
    assert torch.allclose(extrinsics_intrinsics_to_pose_encoding(w2c, k, (h, w)), ref, atol=1e-6)
    c2w_ref, k_ref = pose_encoding_to_extri_intri(ref, (h, w))
    e, kk = pose_encoding_to_extrinsics_intrinsics(ref, (h, w))
    assert torch.allclose(e, affine_inverse(c2w_ref), atol=1e-5) and torch.allclose(kk, k_ref)


def test_normalize_window_extrinsics_matches_official_api():
    w2c, _ = _poses(5, seed=2)
    out = normalize_window_extrinsics(w2c)
    assert torch.allclose(out[:, 0], torch.eye(4), atol=1e-5)
    centres = torch.linalg.inv(out)[..., :3, 3].norm(dim=-1)
    assert torch.allclose(centres.median(), torch.tensor(1.0), atol=1e-5)
    # official: DepthAnything3._normalize_extrinsics (uses no instance state)
    from depth_anything_3.utils.geometry import affine_inverse
    ex = w2c.clone()
    ex_norm = ex @ affine_inverse(ex[:, :1])
    dist = affine_inverse(ex_norm)[..., :3, 3].norm(dim=-1).median().clamp(min=0.1)
    ex_norm[..., :3, 3] /= dist
    assert torch.allclose(out, ex_norm, atol=1e-6)
    assert torch.allclose(normalize_window_extrinsics(w2c[..., :3, :]), ex_norm[..., :3, :], atol=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(\.\.\., 9\)"):
        pose_encoding_to_extrinsics_intrinsics(torch.zeros(1, 2, 8), (14, 14))
    with pytest.raises(ValueError, match="intrinsics must have shape"):
        extrinsics_intrinsics_to_pose_encoding(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 3, 3), (14, 14))
    with pytest.raises(ValueError, match="extrinsics must have shape"):
        extrinsics_intrinsics_to_pose_encoding(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3), (14, 14))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        quaternion_to_rotation_matrix(torch.zeros(3))


# NumPy twins (geometry/) vs torch (model/). Both run the same float32 operations in the same order; only the
# summation order inside a 4x4 matmul / a norm differs between the libraries, so results differ by float32
# rounding: measured at most 4 ulps of the quantity's input scale (rotations and quaternions: their unit scale;
# translations: 1 + the largest input translation, divided by the normalisation distance; focal lengths: their
# size). F32_ULPS = 8 ulps leaves a factor 2 over the worst of 500 random windows.
F32_EPS = float(np.finfo(np.float32).eps)
F32_ULPS = 8


def _random_window(rng, n):
    """(1, n, 4, 4) float32 world->camera extrinsics (any rotation, centres 0.01..20 m away) and (1, n, 3, 3) K."""
    T = np.stack([make_transform(rotation_from_axis_angle(rng.normal(size=3) * rng.uniform(0.0, 3.0)),
                                 rng.normal(size=3) * rng.uniform(0.01, 20.0)) for _ in range(n)])
    E = np.linalg.inv(T).astype(np.float32)[None]
    K = np.zeros((1, n, 3, 3), np.float32)
    K[..., 0, 0], K[..., 1, 1] = rng.uniform(50, 2000, n), rng.uniform(50, 2000, n)
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = 251.5, 139.5, 1.0
    return E, K


def _lower_median(x):
    x = np.sort(np.ravel(x))
    return x[(x.size - 1) // 2]


@pytest.mark.parametrize("seed", range(4))
def test_numpy_pose_encoding_equals_torch_to_float32_rounding(seed):
    rng = np.random.default_rng(seed)
    hw = (280, 504)
    for _ in range(25):
        n = int(rng.integers(1, 9))
        E, K = _random_window(rng, n)
        ours = np_pose_encoding.normalize_window_extrinsics(E, min_scale=MIN_NORMALISATION_DISTANCE)
        ref = normalize_window_extrinsics(torch.from_numpy(E), min_scale=MIN_NORMALISATION_DISTANCE).numpy()
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        rel = np.linalg.inv(E.astype(np.float64) @ np.linalg.inv(E[:, :1].astype(np.float64)))[..., :3, 3]
        dist = max(_lower_median(np.linalg.norm(rel, axis=-1)), MIN_NORMALISATION_DISTANCE)
        t_scale = (1.0 + np.abs(E[..., :3, 3]).max()) / dist
        np.testing.assert_allclose(ours[..., :3, :3], ref[..., :3, :3], rtol=0, atol=F32_ULPS * F32_EPS)
        np.testing.assert_allclose(ours[..., :3, 3], ref[..., :3, 3], rtol=0, atol=F32_ULPS * F32_EPS * t_scale)
        np.testing.assert_array_equal(ours[..., 3, :], ref[..., 3, :])

        enc = np_pose_encoding.extrinsics_intrinsics_to_pose_encoding(ref, K, hw)
        enc_ref = extrinsics_intrinsics_to_pose_encoding(torch.from_numpy(ref), torch.from_numpy(K), hw).numpy()
        assert enc.dtype == np.float32 and enc.shape == enc_ref.shape == (1, n, 9)
        t_scale = 1.0 + np.abs(ref[..., :3, 3]).max()
        np.testing.assert_allclose(enc[..., :3], enc_ref[..., :3], rtol=0, atol=F32_ULPS * F32_EPS * t_scale)
        np.testing.assert_allclose(enc[..., 3:], enc_ref[..., 3:], rtol=0, atol=F32_ULPS * F32_EPS)

        e, k = np_pose_encoding.pose_encoding_to_extrinsics_intrinsics(enc_ref, hw)
        e_ref, k_ref = (v.numpy() for v in pose_encoding_to_extrinsics_intrinsics(torch.from_numpy(enc_ref), hw))
        assert e.dtype == k.dtype == np.float32
        t_scale = 1.0 + np.abs(enc_ref[..., :3]).max()
        np.testing.assert_allclose(e[..., :3], e_ref[..., :3], rtol=0, atol=F32_ULPS * F32_EPS)
        np.testing.assert_allclose(e[..., 3], e_ref[..., 3], rtol=0, atol=F32_ULPS * F32_EPS * t_scale)
        np.testing.assert_allclose(k, k_ref, rtol=F32_ULPS * F32_EPS, atol=F32_ULPS * F32_EPS)


def test_numpy_quaternions_equal_torch_in_float64():
    """float64 (the dtype of transforms.py): the same formulas give the same numbers to float64 round-off."""
    q = torch.cat((_random_quats(200, 5), torch.stack([
        _axis_angle_quat(ax, ang) for ax in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0])
        for ang in (0.0, 1e-4, math.pi / 2, math.pi - 1e-6, math.pi)])))
    r_ref = quaternion_to_rotation_matrix(3.0 * q)
    r = np_quaternion.quaternion_to_rotation_matrix(3.0 * q.numpy())
    np.testing.assert_allclose(r, r_ref.numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np_quaternion.rotation_matrix_to_quaternion(r_ref.numpy()),
                               rotation_matrix_to_quaternion(r_ref).numpy(), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        np_quaternion.quaternion_to_rotation_matrix(np.zeros(3))


def test_pose_conditioned_window_encoding_is_the_torch_chain():
    """``PoseConditionedWindow`` (NumPy) gives the encoding the torch functions give for the same poses."""
    rng = np.random.default_rng(7)
    E, K = _random_window(rng, 5)
    T_world_cam = np.linalg.inv(E[0].astype(np.float64))
    window = PoseConditionedWindow.from_poses(T_world_cam, K[0].astype(np.float64), (280, 504))
    assert isinstance(window.pose_encoding, np.ndarray) and window.pose_encoding.dtype == np.float32
    e_t = normalize_window_extrinsics(torch.from_numpy(window.extrinsics)[None], min_scale=MIN_NORMALISATION_DISTANCE)
    ref = extrinsics_intrinsics_to_pose_encoding(e_t, torch.from_numpy(K), (280, 504)).numpy()
    t_scale = (1.0 + np.abs(window.extrinsics[:, :3, 3]).max()) / window.normalisation_distance
    np.testing.assert_allclose(window.pose_encoding[..., :3], ref[..., :3], rtol=0, atol=F32_ULPS * F32_EPS * t_scale)
    np.testing.assert_allclose(window.pose_encoding[..., 3:], ref[..., 3:], rtol=0, atol=F32_ULPS * F32_EPS)
