"""Evaluation helpers (ATE after Sim(3), scale drift, step jumps, depth AbsRel/delta1) and the
tracker's compatibility with the backend output type ``WindowPrediction``."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle, transform_points
from da3_ros.tracking.metrics import ate_sim3, depth_metrics, path_length, scale_drift, step_jump_ratio


def _helix(n=120):
    t = np.linspace(0, 4 * np.pi, n)
    return np.stack([np.cos(t), np.sin(t), 0.1 * t], axis=1)


def test_ate_is_zero_for_a_similarity_transformed_trajectory():
    gt = _helix()
    T = make_transform(rotation_from_axis_angle([0.3, -0.2, 1.0]), [5.0, -1.0, 2.0], 0.37)
    est = transform_points(T, gt)
    res = ate_sim3(est, gt)
    assert res.rmse < 1e-9 and res.max_error < 1e-9
    assert res.scale == pytest.approx(1 / 0.37, rel=1e-9)
    # SE(3) only: the scale error remains and is measured
    assert ate_sim3(est, gt, with_scale=False).rmse > 0.1


def test_ate_of_known_noise_and_path_length():
    rng = np.random.default_rng(0)
    gt = _helix(2000)
    est = gt + rng.normal(size=gt.shape) * 0.01
    assert ate_sim3(est, gt).rmse == pytest.approx(0.01 * np.sqrt(3), rel=0.05)
    assert path_length(np.array([[0, 0, 0], [3, 4, 0], [3, 4, 2.0]])) == pytest.approx(7.0)


def test_scale_drift_of_a_linearly_growing_scale():
    gt = _helix(300)
    s = np.linspace(1.0, 1.2, 300)[:, None]  # estimated scale grows along the path
    est = np.cumsum(np.vstack([gt[:1], np.diff(gt, axis=0) * s[1:]]), axis=0)
    d = scale_drift(est, gt, segment=50)
    assert 1.0 < d["scale_first"] < 1.04 and 1.16 < d["scale_last"] < 1.2
    assert 0.13 < d["drift"] < 0.19
    assert abs(scale_drift(2.5 * gt, gt)["drift"]) < 1e-9
    with pytest.raises(ValueError, match="no translation"):
        scale_drift(np.zeros((100, 3)), np.zeros((100, 3)))


def test_step_jump_ratio_with_stops_and_gaps():
    p = np.zeros((10, 3))
    p[:, 0] = [0, 1, 2, 3, 3, 3, 4, 5, 9, 10]  # a stop, then a jump of 4
    r = step_jump_ratio(p, min_step=1e-6)
    assert r["median_step"] == 1.0 and r["ratio"] == 4.0
    # the jump spans 4 frames that are missing from the trajectory: no jump
    idx = np.array([0, 1, 2, 3, 4, 5, 6, 7, 11, 12])
    assert step_jump_ratio(p, min_step=1e-6, frame_index=idx)["ratio"] == 1.0
    with pytest.raises(ValueError, match="strictly increasing"):
        step_jump_ratio(p, frame_index=np.zeros(10))


def test_depth_metrics_after_median_scaling():
    rng = np.random.default_rng(1)
    gt = rng.uniform(1, 5, size=(40, 50))
    m = depth_metrics(3.0 * gt, gt)  # any global scale is removed
    assert m["abs_rel"] < 1e-12 and m["delta1"] == 1.0
    bad = gt.copy()
    bad[:, :10] *= 2.0  # 20 % of the pixels off by 2x
    m = depth_metrics(bad, gt)
    k = np.median(gt) / np.median(bad)  # the median scaling applied before the errors
    assert 1 / 1.25 < k < 1.0
    assert m["abs_rel"] == pytest.approx(np.mean(np.abs(k * bad - gt) / gt), rel=1e-12)
    assert m["delta1"] == pytest.approx(0.8)  # k x 2 is still off by > 1.25, k x 1 is not
    with pytest.raises(ValueError, match="no valid pixels"):
        depth_metrics(np.zeros((2, 2)), np.ones((2, 2)))


def test_tracker_accepts_backend_window_prediction():
    prediction_mod = pytest.importorskip("da3_ros.backends.prediction")
    from da3_ros.synthetic.sequence import SyntheticSequence
    from da3_ros.synthetic.window_oracle import WindowOracle
    from da3_ros.tracking import TrackerConfig, WindowTracker

    seq = SyntheticSequence(width=48, height=36, path_scale=0.2)
    a = WindowTracker(TrackerConfig(window_size=3))
    b = WindowTracker(TrackerConfig(window_size=3))
    oa, ob = WindowOracle(seq, seed=9), WindowOracle(seq, seed=9)
    for i in range(15):
        ids_a, ids_b = a.window_for(i, i * 0.1), b.window_for(i, i * 0.1)
        pa, pb = oa.predict(ids_a), ob.predict(ids_b)
        wp = prediction_mod.WindowPrediction(depth=pb.depth, depth_conf=pb.depth_conf, extrinsics=pb.extrinsics,
                                             intrinsics=pb.intrinsics, variant="oracle", ref_view="first").validate()
        ra, rb = a.update(ids_a, pa, pa.intrinsics), b.update(ids_b, wp, wp.intrinsics)
        np.testing.assert_array_equal(ra.T_odom_cam, rb.T_odom_cam)
        np.testing.assert_array_equal(ra.depth, rb.depth)
    assert len(b.trajectory) == 15
