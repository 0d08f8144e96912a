"""Weighted Umeyama Sim(3)/SE(3) and robust IRLS: exact recovery, weights, outliers, bad input."""
import numpy as np
import pytest

from da3_ros.geometry import transforms as tf
from da3_ros.geometry.alignment import robust_align, umeyama, weighted_median


def _data(seed, n=500, scale=True):
    rng = np.random.default_rng(seed)
    R = tf.rotation_from_axis_angle(rng.normal(size=3))
    t = rng.normal(size=3) * 5
    s = float(np.exp(rng.uniform(-1.5, 1.5))) if scale else 1.0
    T = tf.make_transform(R, t, s)
    src = rng.normal(size=(n, 3)) * [2.0, 1.0, 4.0] + [0, 0, 5]
    return rng, T, src, tf.transform_points(T, src)


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_sim3_exact(seed):
    _, T, src, dst = _data(seed)
    est = umeyama(src, dst, with_scale=True)
    np.testing.assert_allclose(est, T, atol=1e-6)
    assert abs(tf.transform_scale(est) - tf.transform_scale(T)) < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_umeyama_se3_exact(seed):
    _, T, src, dst = _data(seed, scale=False)
    est = umeyama(src, dst, with_scale=False)
    np.testing.assert_allclose(est, T, atol=1e-6)
    assert abs(tf.transform_scale(est) - 1.0) < 1e-12


def test_se3_keeps_unit_scale_when_data_is_scaled():
    _, T, src, dst = _data(7, scale=True)
    est = umeyama(src, dst, with_scale=False)
    assert abs(tf.transform_scale(est) - 1.0) < 1e-12
    R_true = T[:3, :3] / tf.transform_scale(T)
    assert tf.rotation_angle(est[:3, :3].T @ R_true) < 1e-6  # rotation is still exact


def test_zero_weights_ignore_corrupted_points():
    rng, T, src, dst = _data(3)
    dst = dst.copy()
    dst[:100] += rng.normal(size=(100, 3)) * 10
    w = np.ones(len(src))
    w[:100] = 0.0
    np.testing.assert_allclose(umeyama(src, dst, w), T, atol=1e-6)
    assert np.max(np.abs(umeyama(src, dst) - T)) > 1e-2  # the same data without weights is wrong


def test_robust_align_exact_data_and_stats():
    _, T, src, dst = _data(11)
    res = robust_align(src, dst, with_scale=True, huber_delta=0.01)
    np.testing.assert_allclose(res.transform, T, atol=1e-6)
    assert res.inlier_ratio == 1.0
    assert res.median_residual < 1e-9
    np.testing.assert_allclose(res.rotation @ res.rotation.T, np.eye(3), atol=1e-9)


def test_robust_align_rejects_gross_outliers():
    rng, T, src, dst = _data(5, n=2000)
    noisy = dst + rng.normal(size=dst.shape) * 0.005
    out = rng.random(len(src)) < 0.25
    noisy[out] += rng.normal(size=(out.sum(), 3)) * 3.0
    depth = np.linalg.norm(noisy, axis=1)
    plain = umeyama(src, noisy)
    res = robust_align(src, noisy, huber_delta=0.01, max_iterations=20, residual_scale=depth)
    err_plain = np.linalg.norm(plain - T)
    err_robust = np.linalg.norm(res.transform - T)
    assert err_robust < 0.2 * err_plain
    assert abs(res.scale / tf.transform_scale(T) - 1) < 5e-3
    assert 0.65 < res.inlier_ratio < 0.85  # ~75 % clean points


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        umeyama(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="same shape"):
        umeyama(np.zeros((5, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least 3"):
        umeyama(np.ones((5, 3)), np.ones((5, 3)), weights=[1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="identical"):
        umeyama(np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        umeyama(np.zeros((3, 3)), np.zeros((3, 3)), weights=[1, -1, 1])


def test_weighted_median_is_the_lower_weighted_median():
    """The one weighted median (alignment, window alignment, metric scale): the smallest value whose cumulative
    weight reaches half the total; exactly half counts (no averaging), so even equal-weight counts give the
    lower middle value; order of the input does not matter; no positive weight -> NaN."""
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([4.0, 1.0, 3.0, 2.0]), np.ones(4)) == 2.0   # lower of 2 and 3
    assert weighted_median(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 1.0   # exactly half -> first
    assert weighted_median(np.array([1.0, 2.0, 10.0]), np.array([0.2, 0.2, 0.6])) == 10.0
    assert weighted_median(np.array([1.0, 2.0, 10.0]), np.array([0.0, 1.0, 0.0])) == 2.0
    assert np.isnan(weighted_median(np.array([1.0, 2.0]), np.zeros(2)))
    assert np.isnan(weighted_median(np.array([]), np.array([])))
