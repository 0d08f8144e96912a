"""RobotOdometry closed loop (ROS-free): the synthetic robot's camera through the oracle, the tracker, the
robot odometry (scale from wheel odometry, pose-conditioned windows from its poses) and BaseOdometry.

Targets (issue 13): metric scale error <= 3 % after 30 frames; base ATE in metres (SE(3) fit, no scale)
<= 3 % of the path; depth AbsRel in metres <= 5 % with pose-conditioned windows.
"""
import numpy as np
import pytest

from da3_ros.backends.prediction import WindowPrediction
from da3_ros.geometry.transforms import invert_transform
from da3_ros.geometry.transforms import make_transform
from da3_ros.pipeline.robot_odometry import RobotOdometry, RobotOdometryConfig
from da3_ros.pipeline.window_dropped import NO_ODOMETRY, WindowDropped
from da3_ros.synthetic.robot import SyntheticRobot
from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle
from da3_ros.tracking.base_trajectory import BaseOdometry
from da3_ros.tracking.metrics import ate_fraction_of_path, ate_sim3
from da3_ros.tracking.tracker import TrackerConfig, WindowTracker
from da3_ros.tracking.tracking_state import LOST, REINITIALISED, TRACKING, TrackingStateMachine

W, H = 128, 96


def _run(scale_source, pose_source, frames=40, garbage=(), seed=0):
    robot = SyntheticRobot()
    seq = robot.sequence(W, H)
    oracle = WindowOracle(seq, OracleNoise(), seed=seed)
    tracker = WindowTracker(TrackerConfig(window_size=4))
    ro = RobotOdometry(RobotOdometryConfig(scale_source=scale_source, pose_source=pose_source),
                       pose_conditioned=pose_source == "tf", network_hw=(H, W), T_base_cam=robot.T_base_cam)
    base = BaseOdometry(robot.T_base_cam, scale_expected=True)
    state = TrackingStateMachine()
    wheel = robot.wheel_odometry
    out = dict(absrel=[], states=[], scale_at=[], conditioned=0, robot=robot)
    for i, t in enumerate(robot.camera_stamps[:frames]):
        ro.add_frame(i, wheel.pose_at(t))
        ids = tracker.window_for(i, t)
        cond = ro.condition(ids, seq.K)
        w = oracle.predict(ids, pose_encoding=cond.encoding, garbage=i in garbage)
        pred = WindowPrediction(depth=w.depth, depth_conf=w.depth_conf, extrinsics=w.extrinsics,
                                intrinsics=w.intrinsics)
        pred, conditioned, _ = ro.align(cond, pred)
        out["conditioned"] += int(conditioned)
        res = tracker.update(ids, pred, seq.K)
        ro.keep_frames(tracker.keyframe_ids)
        med = float(np.median(res.depth)) if res.depth is not None else None
        est = ro.update_scale(i, t, res.T_odom_cam, res.scale, med, res.reinitialised, conditioned)
        out["states"].append(state.on_frame(accepted=not res.rejected, reinitialised=res.reinitialised, stamp=t,
                                            reason=res.reason).state)
        s = ro.metres_per_unit
        out["scale_at"].append(s)
        if res.T_odom_cam is not None:
            base.update(t, res.T_odom_cam, s, est.relative_uncertainty if est else None, res.stats, med)
            if s is not None:
                gt = seq.render(i)[1]
                good = res.confidence >= 0.5 * np.median(res.confidence)   # the cloud's confidence filter
                out["absrel"].append(float(np.mean(np.abs(res.depth[good] * s - gt[good]) / gt[good])))
    ids, T_vis = tracker.trajectory_array()
    stamps = robot.camera_stamps[ids]
    # metres per odometry unit of the visual trajectory up to frame 29 (what the estimate at frame 29 sees)
    upto = np.asarray(ids) <= 29
    out["s_true"] = ate_sim3(T_vis[upto, :3, 3], robot.T_odom_cam(stamps[upto])[:, :3, 3]).scale
    st, T = base.path(ro.metres_per_unit)
    gt = robot.T_odom_base(st)
    out["ate_fraction"] = ate_fraction_of_path(T[:, :3, 3], (invert_transform(gt[0]) @ gt)[:, :3, 3])
    out["ro"] = ro
    return out


@pytest.mark.parametrize("scale_source, pose_source", [("odometry", "none"), ("none", "tf"), ("odometry", "tf")])
def test_metric_scale_and_base_trajectory(scale_source, pose_source):
    r = _run(scale_source, pose_source)
    s30 = r["scale_at"][29]
    assert s30 is not None, "scale still unknown after 30 frames"
    # the wheel odometry's +2 % bias passes into the scale; 3 % (the target for scale_source: odometry)
    # leaves ~1 % for the noise (seeds 0-4: +2.0..+2.8 %). From pose-conditioned windows alone the scale rests on
    # the short, noisy wheel chords inside each window (seeds 0-4: +0.9..+4.7 %): 5 %, the depth target
    limit = 0.03 if scale_source == "odometry" else 0.05
    assert abs(s30 / r["s_true"] - 1) <= limit, (s30, r["s_true"])
    assert r["ate_fraction"] <= 0.03
    assert all(st == TRACKING for st in r["states"])
    if pose_source == "tf":
        # every window with a baseline is conditioned (the first ones are N copies of frame 0: no baseline)
        assert r["conditioned"] >= 35
        # the oracle's depth noise (1 % + 2 % warp + low-confidence blobs) and the 2 % wheel bias
        assert np.median(r["absrel"]) <= 0.05 and max(r["absrel"]) <= 0.06


def test_lost_is_reported_and_recovered_from():
    # 4 garbage windows (< max_consecutive_rejections = 5): lost, then the 5th window aligns again
    r = _run("odometry", "none", frames=40, garbage=range(20, 24))
    states = r["states"]
    assert states[19] == TRACKING and states[20:24] == [LOST] * 4 and states[24:] == [TRACKING] * 16
    assert all(s is not None for s in r["scale_at"][20:])   # no re-initialisation: the scale is kept
    assert r["ate_fraction"] <= 0.03


def test_reinitialisation_restarts_the_scale():
    # 7 garbage windows: the tracker re-anchors on the 5th (itself garbage, so again after 5 more rejections)
    r = _run("odometry", "none", frames=60, garbage=range(20, 27))
    states = r["states"]
    assert states[20] == LOST and REINITIALISED in states[24:31] and states[-1] == TRACKING
    first_reinit = 20 + states[20:].index(REINITIALISED)
    assert r["scale_at"][first_reinit] is None       # a new odometry unit: the scale is unknown again ...
    assert r["scale_at"][-1] is not None             # ... and estimated again from the wheel odometry


def test_configuration_mismatches_are_refused():
    with pytest.raises(ValueError, match="pose-conditioned"):
        RobotOdometry(RobotOdometryConfig(pose_source="tf"), pose_conditioned=False, network_hw=(H, W))
    with pytest.raises(ValueError, match="set pose_source: tf"):
        RobotOdometry(RobotOdometryConfig(), pose_conditioned=True, network_hw=(H, W))
    with pytest.raises(ValueError, match="scale_source"):
        RobotOdometryConfig(scale_source="wheels")


def test_a_view_without_tf_pose_drops_the_window_instead_of_inventing_poses():
    """Issue 19: identity poses for the whole window told the network "no motion" while the robot moved. A
    pose-conditioned graph always takes the pose input, so the window is dropped as ``no_odometry``, counted."""
    ro = RobotOdometry(RobotOdometryConfig(pose_source="tf"), pose_conditioned=True, network_hw=(H, W))
    ro.add_frame(0, np.eye(4))
    ro.add_frame(1, None)
    with pytest.raises(WindowDropped, match=r"no odometry pose for view\(s\) \[3\]") as info:
        ro.condition([0, 0, 0, 1], None)
    assert info.value.reason == NO_ODOMETRY == "no_odometry"
    assert ro.windows_no_odometry == 1 and ro.windows_conditioned == ro.windows_unconditioned == 0
    ro.add_frame(2, make_transform(np.eye(3), [0.3, 0.0, 0.0]))
    c = ro.condition([0, 0, 0, 2], None)      # every view has a pose again: conditioned, intrinsics guessed
    assert c.conditioned and "intrinsics guessed" in c.reason and ro.windows_no_odometry == 1
    assert c.encoding.shape == (4, 9) and np.allclose(c.encoding[:3, :3], 0) and not np.allclose(c.encoding[3, :3], 0)
