"""``WindowProcessor`` with a camera rig on the synthetic rig with the oracle backend (ROS-free; issue 14).

The oracle replaces the network by ground truth with noise (``WindowOracle``); its window scale is known
(``OracleBackend.last_window.scale``, window units per metre), so the per-window rig scale is checked exactly.

Oracle translation noise: the relative pose of two views is perturbed by ``translation_noise x median depth``
per axis. A stereo pair's per-window scale error is about ``sqrt(2) x noise x depth / baseline`` per snapshot:
at the oracle default (0.002, meant for views far apart in time) that is 6 % for a 0.12 m pair at 3.8 m; the
issue's 2 % per window needs a network that places the two cameras of one instant within ~0.0001 x depth
(0.4 mm at 3.8 m, 0.04 px of disparity at 160 px width). The stereo tests state that accuracy explicitly
(``STEREO_NOISE``); the ring (0.17 m chords, 3 cameras, Umeyama) is tested at 0.0005.
"""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.backends.oracle_backend import OracleBackend, write_oracle_spec
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.geometry.transforms import invert_transform
from da3_ros.pipeline.camera_stream import CameraFrame
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.synthetic.rig import RigWorld
from da3_ros.tracking.metrics import ate_fraction_of_path

W, H = 160, 120
STEREO_NOISE = 0.0001
FRAMES = range(0, 60)   # room_tour's forward segment: 1.8 m


def _world(tmp_path, preset="stereo", views=4, frames=FRAMES, noise=STEREO_NOISE, pose_conditioned=False,
           baseline=0.12, **noise_fields):
    world = RigWorld(preset=preset, baseline=baseline)
    seq = world.sequence(W, H)
    C = len(seq.rig)
    rendered = {i * C + c: seq.render(c, i)[0] for i in frames for c in range(C)}
    spec = write_oracle_spec(tmp_path / "rig.json", rendered, width=W, height=H, views=views, rig=world.to_dict(),
                             noise={"translation_noise": noise, **noise_fields},
                             pose_conditioned=pose_conditioned)
    return seq, OracleBackend(str(spec))


def _snapshot(seq, i, with_info=True):
    return [CameraFrame(seq.render(c, i)[0], seq.stamp_ns(c, i) + 10**12,
                        PinholeCamera(W, H, seq.K[c]) if with_info else None, seq.rig.T_base_cam[c])
            for c in range(len(seq.rig))]


def _depth_ratio(depth, truth):
    ok = np.isfinite(depth) & (depth > 0)
    return float(np.median(depth[ok] / truth[ok]))


def _run(seq, backend, config, frames=FRAMES, T_odometry_base=None):
    proc = WindowProcessor(backend, config, len(seq.rig))
    rows = []
    for i in frames:
        out = proc.process(_snapshot(seq, i), None if T_odometry_base is None else T_odometry_base(i))
        rows.append((i, out, backend.last_window.scale))
    return proc, rows


def test_stereo_every_window_metric_within_2_percent_and_rig_pose(tmp_path):
    seq, backend = _world(tmp_path)
    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig", publish_map_points=True))
    trusted = [(i, out, truth) for i, out, truth in rows if out.rig_scale is not None and out.rig_scale.trusted]
    assert len(trusted) >= len(rows) - 2, proc.rig_scale.windows   # the first (padded) windows may be too short
    errors = np.array([out.rig_scale.scale * truth - 1.0 for _, out, truth in trusted])
    # per-window scale from the rig alone (issue: <= 2 %); measured worst 0.9 % at STEREO_NOISE
    assert np.max(np.abs(errors)) <= 0.02, errors
    for i, out, _ in trusted:   # each camera's published depth is in metres with that window's scale
        assert out.depth_scaled_by == "window rig scale"
        for c, cam in enumerate(out.cameras):
            # the oracle's smooth 2 % depth warp and blobs move the median ratio by < 1.5 %
            assert abs(_depth_ratio(cam.depth, seq.render(c, i)[1]) - 1.0) <= 0.035, (i, c)
    # the rig pose: reference camera in metres with the fused scale, against the truth (SE(3) only)
    est, gt = [], []
    for i, out, _ in rows:
        if out.T_odom_cam is not None and out.metres_per_unit is not None:
            T = out.T_odom_cam.copy()
            T[:3, 3] *= out.metres_per_unit
            est.append(T)
            gt.append(seq.T_world_base[i] @ seq.rig.T_base_cam[0])
    assert len(est) >= len(rows) - 5
    assert ate_fraction_of_path(np.stack(est), np.stack(gt)) <= 0.03
    # the right camera's pose: the window's inter-camera pose, 0.12 m to the right of the left camera
    last = rows[-1][1]
    T_left_right = invert_transform(last.cameras[0].T_odom_cam) @ last.cameras[1].T_odom_cam
    baseline = np.linalg.norm(T_left_right[:3, 3]) * last.metres_per_unit
    assert baseline == pytest.approx(0.12, rel=0.03)
    info = proc.describe()
    assert info["depth_unit"] == "m" and info["rig_scale_state"] == "ok" and info["rig_cameras"] == 2
    proc.close()
    # the map fused both cameras of every keyframe snapshot
    assert info["map_keyframes_fused"] % 2 == 0 and info["map_keyframes_fused"] >= 4


def test_ring_of_three_cameras(tmp_path):
    seq, backend = _world(tmp_path, preset="ring", views=6, frames=range(0, 30), noise=0.0005)
    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig"), frames=range(0, 30))
    errors = [out.rig_scale.scale * truth - 1.0 for _, out, truth in rows if out.rig_scale.trusted]
    assert len(errors) == len(rows)
    assert np.max(np.abs(errors)) <= 0.02   # measured worst 0.6 % (Umeyama over 3 cameras x 2 snapshots)
    i, out, _ = rows[-1]
    assert len(out.cameras) == 3
    for c, cam in enumerate(out.cameras):
        assert cam.depth.shape == (H, W) and cam.points is not None
        assert abs(_depth_ratio(cam.depth, seq.render(c, i)[1]) - 1.0) <= 0.035


def test_short_baseline_is_reported_and_not_trusted(tmp_path):
    seq, backend = _world(tmp_path, baseline=0.01, frames=range(0, 8), noise=0.002)
    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig"), frames=range(0, 8))
    assert all(out.rig_scale.state == "baseline_too_short" for _, out, _ in rows)
    assert all(out.depth_scaled_by == "none" for _, out, _ in rows)   # no trusted window: unit unknown
    info = proc.describe()
    assert info["metric_scale_m_per_unit"] == "unknown" and info["depth_unit"].startswith("odometry units")
    assert "baseline_too_short 8" in info["rig_scale_windows"]


def test_rig_and_wheel_odometry_are_fused(tmp_path):
    seq, backend = _world(tmp_path)
    T0 = invert_transform(seq.T_world_base[0])

    def wheel(i):   # a wheel odometry with a 2 % scale error
        T = T0 @ seq.T_world_base[i]
        T[:3, 3] *= 1.02
        return T

    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig_odometry"), T_odometry_base=wheel)
    est = rows[-1][1].scale_estimate
    assert est.known and est.reason.startswith("inverse-variance fusion of rig")
    rig, odo = proc.rig_scale.estimate, proc.robot.scale_estimate
    assert rig.known and odo.known
    lo, hi = sorted((rig.scale, odo.scale))
    assert lo <= est.scale <= hi
    assert est.relative_uncertainty < min(rig.relative_uncertainty, odo.relative_uncertainty)


def test_pose_conditioned_rig_windows_follow_extrinsics_and_odometry(tmp_path):
    """pose_source: tf: every view is fed T_odometry_base(snapshot) @ T_base_cam(camera); the oracle follows the
    encoding, so depth comes out in metres (AbsRel <= 5 %, as for one camera) and the rig scale is ~1."""
    seq, backend = _world(tmp_path, frames=range(0, 20), pose_conditioned=True)
    T0 = invert_transform(seq.T_world_base[0])
    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig", pose_source="tf"), frames=range(0, 20),
                      T_odometry_base=lambda i: T0 @ seq.T_world_base[i])
    assert proc.robot.windows_conditioned >= len(rows) - 2   # the first windows have no baseline yet
    for i, out, _ in rows[5:]:
        assert out.conditioned
        assert out.rig_scale.scale == pytest.approx(1.0, abs=0.02)   # aligned back: window units are metres
        for c, cam in enumerate(out.cameras):
            assert abs(_depth_ratio(cam.depth, seq.render(c, i)[1]) - 1.0) <= 0.05


def test_bad_snapshots_are_refused(tmp_path):
    seq, backend = _world(tmp_path, frames=range(0, 2))
    proc = WindowProcessor(backend, ProcessorConfig(), 2)
    with pytest.raises(ValueError, match=r"has 2 camera frame\(s\), got 1"):
        proc.process(_snapshot(seq, 0)[:1])
    bad = _snapshot(seq, 0)
    bad[1] = CameraFrame(bad[1].rgb[..., 0], bad[1].stamp_ns)
    with pytest.raises(ValueError, match="camera 1: expected an RGB uint8"):
        proc.process(bad)
    with pytest.raises(ValueError, match=r"re-export it with --views 6"):
        WindowProcessor(backend, ProcessorConfig(), 3)
    with pytest.raises(ValueError, match="scale_source must be one of"):
        WindowProcessor(backend, ProcessorConfig(scale_source="stereo"), 2)


def test_a_noisier_network_falls_back_to_the_fused_scale(tmp_path):
    """At the oracle's default pose noise (0.002 x depth) single stereo windows are off by ~5 % while the noise
    model (0.001) alone would report ~3.7 %; the scatter of the recent windows exposes it: such windows report
    that scatter as their uncertainty, become ``scatter_too_large`` above 5 % and their depth uses the odometry
    frame's fused scale instead (measured, seeded: their own scales 5.3 % off in the median, the published depth
    4.8 %; the fused scale carries the tracker's scale drift, so the gain is small: the point is honest reporting)."""
    # no depth warp / blobs: a camera's median depth ratio to the truth is then the scale error of its window
    seq, backend = _world(tmp_path, noise=0.002, frames=range(0, 40), depth_warp=0.0, low_conf_blobs=0)
    proc, rows = _run(seq, backend, ProcessorConfig(scale_source="rig"), frames=range(0, 40))
    fallback = [(i, out, truth) for i, out, truth in rows if out.rig_scale.state == "scatter_too_large"]
    assert len(fallback) >= 10, proc.rig_scale.windows   # the scatter is ~5 %, the limit: about half of them
    for _, out, _ in fallback:
        est = out.rig_scale
        assert est.relative_uncertainty == est.rel_sigma_windows > 0.05 >= est.rel_sigma_model
        assert out.depth_scaled_by == "odometry-frame scale"
    for _, out, _ in rows[6:]:   # from 5 measured windows on, every window's uncertainty includes the scatter
        assert out.rig_scale.relative_uncertainty >= out.rig_scale.rel_sigma_windows
    own = np.median([abs(out.rig_scale.scale * truth - 1.0) for _, out, truth in fallback])
    used = np.median([abs(_depth_ratio(out.cameras[0].depth, seq.render(0, i)[1]) - 1.0) for i, out, _ in fallback])
    assert used <= own, (used, own)
    assert "recent windows scatter" in proc.describe()["rig_scale_window"]
