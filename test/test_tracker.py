"""WindowTracker on synthetic ground truth: exact recovery, metric mode, re-initialisation, reset,
bad input. The 300-frame "Done when" run is in test_tracker_sequence.py."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import invert_transform, rotation_angle, rotation_from_axis_angle
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle
from da3_ros.tracking import TrackerConfig, WindowTracker

ZERO = OracleNoise(depth_noise=0, depth_warp=0, rotation_noise_deg=0, translation_noise=0, low_conf_blobs=0)


@pytest.fixture(scope="module")
def small_seq():
    seq = SyntheticSequence(width=64, height=48, path_scale=0.3)  # same room tour, 90 frames
    for i in range(len(seq)):
        seq.render(i)
    return seq


def _gt_rel(seq, i):
    return invert_transform(seq.T_world_cam[0]) @ seq.T_world_cam[i]


def _step(tracker, oracle, i, stamp, **kw):
    ids = tracker.window_for(i, stamp)
    pred = oracle.predict(ids, **kw)
    return ids, pred, tracker.update(ids, pred, pred.intrinsics)


def test_exact_predictions_give_exact_trajectory_any_reference_view(small_seq):
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=4))
    oracle = WindowOracle(seq, noise=ZERO, seed=3)
    assert tracker.unit == "model"
    windows = []
    for i in range(len(seq)):
        ids, pred, res = _step(tracker, oracle, i, seq.stamps[i], ref_view="random")
        windows.append(ids)
        if i == 0:
            s0 = pred.scale  # odometry unit = the first window's scale
            assert res.reinitialised is False and res.aligned is False and res.keyframe
            np.testing.assert_allclose(res.T_odom_cam, np.eye(4), atol=1e-9)
        else:
            assert res.aligned and not res.rejected, res.reason
        gt = _gt_rel(seq, i)
        assert rotation_angle(res.T_odom_cam[:3, :3].T @ gt[:3, :3]) < 1e-5
        np.testing.assert_allclose(res.T_odom_cam[:3, 3], s0 * gt[:3, 3], atol=1e-4 * s0)
        np.testing.assert_allclose(res.depth, s0 * seq.render(i)[1], rtol=1e-4)
        assert res.scale == pytest.approx(s0 / pred.scale, rel=1e-5)
    # windows: newest frame last, front padded with the oldest keyframe until N-1 keyframes exist
    assert windows[0] == [0, 0, 0, 0] and windows[1] == [0, 0, 0, 1]
    kfs = [e.frame_id for e in tracker.trajectory if e.keyframe]
    assert len(kfs) >= 6
    later = windows[kfs[3] + 1]
    assert later[:3] == kfs[1:4] and later[3] == kfs[3] + 1
    assert tracker.keyframe_ids == kfs[-3:]


def test_metric_model_is_aligned_with_se3_in_metres(small_seq):
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=3, metric=True))
    oracle = WindowOracle(seq, noise=ZERO, seed=4, metric=True)
    for i in range(40):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i], ref_view="last")
        assert res.unit == "m" and res.scale == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(res.T_odom_cam[:3, 3], _gt_rel(seq, i)[:3, 3], atol=1e-5)
    # a metric window that is 20 % off in scale cannot be fixed by SE(3): rejected (scale gate)
    ids = tracker.window_for(40, seq.stamps[40])
    pred = oracle.predict(ids)
    pred.depth *= 1.2
    pred.extrinsics[:, :, 3] *= 1.2
    res = tracker.update(ids, pred, pred.intrinsics)
    assert res.rejected and res.T_odom_cam is None and res.depth is None


def test_garbage_windows_are_rejected_then_tracker_reinitialises_without_jump(small_seq):
    seq = small_seq
    cfg = TrackerConfig(window_size=4, max_consecutive_rejections=3)
    tracker = WindowTracker(cfg)
    oracle = WindowOracle(seq, seed=7)
    for i in range(30):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i])
        assert not res.rejected
    last_pose, last_scale = res.T_odom_cam.copy(), res.scale
    assert tracker.last_scale == last_scale

    def confident_median(r):  # median depth over pixels with at least half the median confidence
        return float(np.median(r.depth[r.confidence >= 0.5 * np.median(r.confidence)]))

    last_median = confident_median(res)
    n_traj = len(tracker.trajectory)
    for i in (30, 31):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i], garbage=True)
        assert res.rejected and not res.reinitialised and res.T_odom_cam is None
        assert any(g in res.reason for g in ("inlier", "residual", "scale_jump", "shared_pose", "pose_jump"))
        assert res.scale == tracker.last_scale == last_scale   # what the rejected depth is published with
    assert len(tracker.trajectory) == n_traj  # a rejected window leaves the trajectory untouched
    _, _, res = _step(tracker, oracle, 32, seq.stamps[32], garbage=True)
    assert res.reinitialised and not res.rejected and res.keyframe and not res.aligned
    np.testing.assert_allclose(res.T_odom_cam, last_pose, atol=1e-9)  # anchored: no jump
    assert confident_median(res) == pytest.approx(last_median, rel=0.01)  # same unit (grid median)
    assert tracker.keyframe_ids == [32]
    # The re-initialising window was garbage too, so good windows disagree with it: they are
    # rejected until the policy re-initialises again (on a good window), then everything aligns.
    flags = []
    for i in range(33, 60):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i])
        flags.append("R" if res.rejected else ("I" if res.reinitialised else "A"))
        if res.reinitialised:
            np.testing.assert_allclose(res.T_odom_cam, last_pose, atol=1e-9)
    assert "".join(flags) == "RRI" + "A" * 24
    # after that, motion matches the ground truth up to one scale: straight line, right direction
    ids, P = tracker.trajectory_array()
    sel = [k for k, f in enumerate(ids) if 36 <= f < 60]
    est = P[sel, :3, 3] - P[sel[0], :3, 3]
    gt = seq.T_world_cam[[ids[k] for k in sel], :3, 3] - seq.T_world_cam[ids[sel[0]], :3, 3]
    est_dir = est[-1] / np.linalg.norm(est[-1])
    gt_in_odom = last_pose[:3, :3] @ invert_transform(seq.T_world_cam[35])[:3, :3] @ (gt[-1] / np.linalg.norm(gt[-1]))
    assert np.degrees(np.arccos(np.clip(est_dir @ gt_in_odom, -1, 1))) < 10.0
    assert tracker.reset_reasons == []


def test_reset_hard_and_soft(small_seq):
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=4))
    oracle = WindowOracle(seq, seed=2)
    for i in range(12):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i])
    last = res.T_odom_cam.copy()
    assert np.linalg.norm(last[:3, 3]) > 0
    tracker.reset("resolution change", keep_odom_frame=True)
    _, _, res = _step(tracker, oracle, 12, seq.stamps[12])
    assert res.reinitialised and res.keyframe
    np.testing.assert_allclose(res.T_odom_cam, last, atol=1e-9)
    assert len(tracker.trajectory) == 13
    tracker.reset("bag loop")
    assert tracker.trajectory == [] and tracker.keyframe_ids == []
    ids, _, res = _step(tracker, oracle, 13, seq.stamps[13])
    assert ids == [13] * 4 and not res.reinitialised
    np.testing.assert_allclose(res.T_odom_cam, np.eye(4), atol=1e-12)
    assert tracker.reset_reasons == ["resolution change", "bag loop"]


def test_tracker_keeps_the_images_of_its_keyframes_only(small_seq):
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=3))
    oracle = WindowOracle(seq, noise=ZERO, seed=1)
    for i in range(30):
        ids = tracker.window_for(i, seq.stamps[i], np.full((48, 64, 3), i, np.uint8))
        images = tracker.window_images(ids)
        assert images.shape == (3, 48, 64, 3)
        np.testing.assert_array_equal(images[:, 0, 0, 0], ids)   # each view is its own frame's image
        pred = oracle.predict(ids)
        tracker.update(ids, pred, pred.intrinsics)
        # every keyframe has its image and no other frame's image is kept
        assert [k.frame_id for k in tracker.keyframes if k.image is not None] == tracker.keyframe_ids
    assert len(tracker.keyframe_ids) == 2 and tracker.keyframe_ids[0] > 0
    tracker.reset("bag loop")
    with pytest.raises(ValueError, match="no image of frame"):
        tracker.window_images(ids[:1])
    # frames registered but never updated (the model failed) keep their image only for a while
    for i in range(100, 106):
        tracker.window_for(i, float(i), np.zeros((48, 64, 3), np.uint8))
    assert tracker.window_images([105, 102]).shape == (2, 48, 64, 3)
    with pytest.raises(ValueError, match="no image of frame 101"):
        tracker.window_images([101])


def test_bad_input_is_reported_clearly(small_seq):
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=4))
    oracle = WindowOracle(seq, seed=0)
    ids = tracker.window_for(0, 0.0)
    pred = oracle.predict(ids)
    with pytest.raises(ValueError, match="window must have 4 frame ids"):
        tracker.update(ids[:3], pred, pred.intrinsics)
    with pytest.raises(ValueError, match="extrinsics"):
        tracker.update(ids, {"depth": pred.depth}, pred.intrinsics)
    with pytest.raises(ValueError, match=r"extrinsics must have shape \(4, 3, 4\)"):
        tracker.update(ids, {"depth": pred.depth, "extrinsics": pred.extrinsics[:, :3, :3]}, pred.intrinsics)
    with pytest.raises(ValueError, match="network cameras"):
        tracker.update(ids, pred, None)
    with pytest.raises(ValueError, match=r"cameras_net must be \(3, 3\) or \(4, 3, 3\)"):
        tracker.update(ids, pred, pred.intrinsics[:2])
    with pytest.raises(ValueError, match="not registered"):
        tracker.update([0, 0, 0, 99], pred, pred.intrinsics)
    tracker.update(ids, pred, pred.intrinsics)
    ids = tracker.window_for(1, 0.1)
    small = WindowOracle(SyntheticSequence(width=32, height=24, path_scale=0.3), seed=0).predict(ids)
    with pytest.raises(ValueError, match="resolution change"):
        tracker.update(ids, small, small.intrinsics)
    with pytest.raises(ValueError, match="window_size must be >= 2"):
        TrackerConfig(window_size=1)
    with pytest.raises(ValueError, match="startup_keyframe_factor"):
        TrackerConfig(startup_keyframe_factor=1.5)


def test_newest_view_pose_jump_is_rejected(small_seq):
    """Keyframe views consistent, only the newest view's pose is wrong: the step gate rejects."""
    seq = small_seq
    tracker = WindowTracker(TrackerConfig(window_size=4))
    oracle = WindowOracle(seq, noise=ZERO, seed=11)
    for i in range(20):
        _, _, res = _step(tracker, oracle, i, seq.stamps[i])
    med = float(np.median(res.depth))
    ids = tracker.window_for(20, seq.stamps[20])
    pred = oracle.predict(ids, ref_view="first")
    pred.extrinsics[-1, :, 3] += np.float32(pred.scale * 2.0)  # newest camera moved by ~3.5 m
    res = tracker.update(ids, pred, pred.intrinsics)
    assert res.rejected and res.reason.startswith("pose_jump_translation"), res.reason
    ids = tracker.window_for(21, seq.stamps[21])
    pred = oracle.predict(ids, ref_view="first")
    R = pred.extrinsics[-1, :, :3].astype(np.float64)
    pred.extrinsics[-1, :, :3] = (rotation_from_axis_angle([0.0, np.radians(60.0), 0.0]) @ R).astype(np.float32)
    res = tracker.update(ids, pred, pred.intrinsics)
    assert res.rejected and res.reason.startswith("pose_jump_rotation"), res.reason
    # the next consistent window is accepted, with a step that is small against the scene depth
    _, _, res = _step(tracker, oracle, 22, seq.stamps[22])
    assert res.aligned and not res.rejected
    prev = tracker.trajectory[-2].T_odom_cam
    assert np.linalg.norm(res.T_odom_cam[:3, 3] - prev[:3, 3]) < 0.1 * med


def test_trajectory_memory_is_bounded():
    from da3_ros.synthetic.sequence import SyntheticSequence
    from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle
    from da3_ros.tracking.tracker import TrackerConfig, WindowTracker

    seq = SyntheticSequence(width=80, height=60)
    oracle = WindowOracle(seq, OracleNoise(depth_noise=0.0, depth_warp=0.0, rotation_noise_deg=0.0,
                                           translation_noise=0.0, low_conf_blobs=0), seed=0)
    tracker = WindowTracker(TrackerConfig(window_size=2, max_trajectory_length=5, grid_points=200))
    for i in range(12):
        ids = tracker.window_for(i, float(i))
        pred = oracle.predict(ids)
        tracker.update(ids, pred, pred.intrinsics)
    ids, poses = tracker.trajectory_array()
    assert len(ids) == 5 and ids[-1] == 11 and poses.shape == (5, 4, 4)
