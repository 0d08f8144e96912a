"""Unsynchronised rig cameras (issue 19, item 7): each camera at its own stamp, ROS-free through the oracle.

The synthetic rig world with ``camera_offset_s``: the right camera of a stereo pair captures 15 ms after the left
one while the robot drives at 1 m/s (``room_tour`` at ``path_scale`` 0.3: 3 m in 30 frames at 10 Hz), so its image
and its ground-truth pose are those of its own instant; the oracle (``WindowOracle`` over ``RigSequence.views()``)
serves windows of those poses. The odometry is the ground-truth base pose at each camera's stamp
(``T_world_base_capture``), relative to the first frame.

Worst case: the pair looking right (``yaw_deg`` -90), its baseline along the travel: 15 mm of false baseline on
0.12 m, a 14 % scale error uncompensated. Forward-looking pair: the false baseline is across the baseline
(second order in the length: <= ~1 %), but the baseline's direction is off by atan(15 / 120) = 7.1 deg.
Tolerances: the oracle's pose noise is ``STEREO_NOISE`` (0.0001 x depth per axis, seeded, as in
``test_window_processor_rig``: measured worst 0.9 % per window there), numpy's seeded generators give the same
noise on every CPU, so the bounds below hold with the margins stated next to them.
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

W, H = 160, 120
STEREO_NOISE = 0.0001
OFFSET_S = 0.015
FRAMES = range(0, 30)   # room_tour's first forward segment at path_scale 0.3: 1 m/s


def _world(tmp_path, yaw_deg, pose_conditioned=False):
    world = RigWorld(yaw_deg=yaw_deg, path_scale=0.3, camera_offset_s=OFFSET_S)
    seq = world.sequence(W, H)
    speed = np.linalg.norm(seq.T_world_base[1, :3, 3] - seq.T_world_base[0, :3, 3]) * seq.path.fps
    assert speed == pytest.approx(1.0, rel=0.01)
    rendered = {i * 2 + c: seq.render(c, i)[0] for i in FRAMES for c in range(2)}
    spec = write_oracle_spec(tmp_path / f"rig{yaw_deg:+.0f}.json", rendered, width=W, height=H, views=4,
                             rig=world.to_dict(), noise={"translation_noise": STEREO_NOISE},
                             pose_conditioned=pose_conditioned)
    return seq, str(spec)


def _run(seq, spec, odometry: str, config=None):
    """Every snapshot through a fresh processor; ``odometry``: "per_camera" (each camera's stamp), "reference"
    (one pose, the reference camera's stamp) or "none". Rows: (rig estimate, true window scale, outcome)."""
    backend = OracleBackend(spec)
    proc = WindowProcessor(backend, config or ProcessorConfig(scale_source="rig"), 2)
    T0 = invert_transform(seq.T_world_base[0])
    rows = []
    for i in FRAMES:
        snapshot = [CameraFrame(seq.render(c, i)[0], seq.stamp_ns(c, i) + 10**12, PinholeCamera(W, H, seq.K[c]),
                                seq.rig.T_base_cam[c]) for c in range(2)]
        poses = [T0 @ seq.T_world_base_capture(c, i) for c in range(2)]
        odo = {"per_camera": poses, "reference": poses[0], "none": None}[odometry]
        out = proc.process(snapshot, odo)
        rows.append((out.rig_scale, backend.last_window.scale, out))
    proc.close()
    return proc, rows


def _errors(rows):
    return np.array([est.scale * truth - 1.0 for est, truth, _ in rows])


def test_pair_out_of_sync_along_its_baseline_is_compensated_by_odometry(tmp_path):
    seq, spec = _world(tmp_path, yaw_deg=-90.0)
    proc, rows = _run(seq, spec, "per_camera")
    errors = _errors(rows)
    # the bound: <= 2 % per window (measured worst 0.42 %, median |0.1| %)
    assert np.max(np.abs(errors)) <= 0.02, errors
    assert all(est.trusted and est.rel_sigma_unsynchronised == 0.0 for est, _, _ in rows), proc.rig_scale.windows
    assert all(out.depth_scaled_by == "window rig scale" for _, _, out in rows)
    info = proc.describe()
    assert info["rig_stamp_offset_ms"] == pytest.approx(15.0, abs=1e-6)
    assert info["rig_stamp_compensation"].startswith("odometry")

    # without the per-camera odometry (one pose at the reference stamp, or none at all) the same windows measure a
    # false baseline: 15 mm along 120 mm, the scale ~14 % off (measured median 14.0 %)
    for odometry in ("reference", "none"):
        proc, rows = _run(seq, spec, odometry)
        errors = _errors(rows)
        assert np.median(np.abs(errors)) >= 0.10, (odometry, errors)
        # ... which the widened uncertainty says: no window trusted, each one's stamp share covers >= 90 % of its
        # actual error (measured 98-104 %); the first window (one snapshot: no velocity) is "unknown"
        assert not any(est.trusted for est, _, _ in rows)
        assert all(est.state == "unsynchronised" for est, _, _ in rows), proc.rig_scale.windows
        assert np.isinf(rows[0][0].rel_sigma_unsynchronised)
        assert all(est.rel_sigma_unsynchronised >= 0.9 * abs(e) for (est, _, _), e in zip(rows[1:], errors[1:]))
        assert all(out.depth_scaled_by == "none" for _, _, out in rows)   # no trusted scale: no metres
        info = proc.describe()
        assert info["rig_stamp_offset_ms"] == pytest.approx(15.0, abs=1e-6)
        assert info["rig_stamp_compensation"].startswith("none: no odometry at every camera's stamp")
        assert f"unsynchronised {len(rows)}" in info["rig_scale_windows"]


def test_forward_pair_out_of_sync_keeps_its_baseline_direction_with_odometry(tmp_path):
    seq, spec = _world(tmp_path, yaw_deg=0.0)
    _, rows = _run(seq, spec, "per_camera")
    assert np.max(np.abs(_errors(rows))) <= 0.02          # measured worst 0.75 %
    assert max(est.translation_residual_deg for est, _, _ in rows) <= 1.0   # measured <= 0.3 deg
    _, rows = _run(seq, spec, "none")
    # the false baseline is across the true one: its direction is atan(15 / 120) = 7.1 deg off, below the 10 deg
    # consistency limit, and the length only to second order (+ the heading wobble): within the widened uncertainty
    residuals = np.array([est.translation_residual_deg for est, _, _ in rows[1:]])
    assert np.all(np.abs(residuals - 7.1) <= 1.0), residuals
    errors = _errors(rows)[1:]
    assert all(est.relative_uncertainty >= abs(e) for (est, _, _), e in zip(rows[1:], errors))


def _right_camera_error(seq, rows):
    """Per window: (metres per odometry unit, |published left -> right translation - the true one| in metres)."""
    out = []
    for i, (_, _, outcome) in zip(FRAMES, rows):
        if outcome.cameras[0].T_odom_cam is None or outcome.metres_per_unit is None:
            continue
        T = invert_transform(outcome.cameras[0].T_odom_cam) @ outcome.cameras[1].T_odom_cam
        truth = invert_transform(seq.T_world_cam[i, 0]) @ seq.T_world_cam[i, 1]   # 0.105 m: 15 mm travelled
        out.append((outcome.metres_per_unit, float(np.linalg.norm(T[:3, 3] * outcome.metres_per_unit
                                                                  - truth[:3, 3]))))
    return np.array(out)


def test_pose_conditioned_rig_views_are_placed_at_their_own_stamps(tmp_path):
    """pose_source: tf: view c of a snapshot is fed T_odometry_base(t_c) @ T_base_cam(c); the oracle follows the
    encoding (exactly: the aligned rig scale is 1 either way), so only the per-camera poses put the right camera
    where it was."""
    seq, spec = _world(tmp_path, yaw_deg=-90.0, pose_conditioned=True)
    config = ProcessorConfig(scale_source="rig", pose_source="tf")
    _, rows = _run(seq, spec, "per_camera", config)
    assert sum(out.conditioned for _, _, out in rows) >= len(rows) - 2   # the first windows may lack motion
    good = _right_camera_error(seq, rows)[5:]
    # measured: metres per unit within 0.4 % of 1, the right camera within 3.5 mm (oracle noise 0.4 mm per axis
    # and view at 4 m, through the tracker's Sim(3) of the reference camera)
    assert np.max(np.abs(good[:, 0] - 1.0)) <= 0.01 and np.max(good[:, 1]) <= 0.006, good
    _, rows = _run(seq, spec, "reference", config)
    bad = _right_camera_error(seq, rows)[5:]
    # conditioned on the reference stamp only: the aligned windows are placed by SE(3) in metres and never
    # rescaled (issue 19 item 1), so the unit stays right; the right camera is where the reference stamp says,
    # the 15 mm the base travelled off (measured 15 mm)
    assert np.all(bad[:, 0] == 1.0) and np.median(bad[:, 1]) >= 0.005, bad
