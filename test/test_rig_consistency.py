"""The rig scale's consistency gates and stamp-offset helpers (``tracking.rig_scale``; issue 19, item 7).

Predicted rig poses come from the synthetic rig's ground truth with seeded Gaussian centre noise (as in
``test_rig_scale``): the translation gate compares the DIRECTION of each predicted baseline (seen from camera a,
averaged over the window's snapshots) with the known one, limit ``max_translation_residual_deg`` = 10 deg.
"""
import numpy as np
import pytest

from da3_ros.geometry.transforms import invert_transform, rotation_from_axis_angle
from da3_ros.synthetic.rig import RigSequence, ring, stereo_pair
from da3_ros.tracking.rig_scale import (RigScaleConfig, estimate_rig_scale, motion_compensated_mounts,
                                        unsynchronised_rel_error)

CENTRE_NOISE = 0.0005


def _window(seq, rng, snapshots=8, noise=CENTRE_NOISE):
    """(T_window_cam (K, C, 4, 4) window units, u, scene depth in window units, the frames used)."""
    frames = np.sort(rng.choice(len(seq), size=snapshots, replace=False))
    u = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    T = seq.T_world_cam[frames]
    P = np.einsum("ij,kcjl->kcil", invert_transform(T[0, 0]), T)
    depth = float(np.median([np.median(seq.render(c, int(f))[1]) for f in frames for c in range(len(seq.rig))]))
    P[..., :3, 3] *= u
    P[..., :3, 3] += rng.normal(0.0, noise * depth * u, size=P[..., :3, 3].shape)
    return P, u, depth * u, frames


def test_translation_gate_catches_wrong_baselines_the_rotation_gate_misses():
    pair = stereo_pair(0.12)
    seq = RigSequence(pair, path_scale=0.5, width=32, height=24)
    rng = np.random.default_rng(11)
    residuals = []
    for _ in range(30):   # correct extrinsics at the stated noise: never inconsistent (measured worst 0.7 deg)
        P, u, D, _ = _window(seq, rng)
        est = estimate_rig_scale(P, pair.T_base_cam, D)
        residuals.append(est.translation_residual_deg)
        assert est.state == "ok", est.summary()
    assert max(residuals) <= 3.0, max(residuals)
    P, u, D, _ = _window(seq, rng)
    swapped = pair.T_base_cam[::-1].copy()   # left and right exchanged in the configuration: same length, rotation
    est = estimate_rig_scale(P, swapped, D)
    assert est.rotation_residual_deg < 1.0 and est.translation_residual_deg == pytest.approx(180.0, abs=2.0)
    assert est.state == "inconsistent" and not est.trusted
    assert abs(est.scale * u - 1.0) < 0.02   # the length alone still fits: only the direction tells
    # a right camera believed 0.12 m above the left instead of beside it: 90 deg
    wrong_axis = pair.T_base_cam.copy()
    wrong_axis[1, :3, 3] = pair.T_base_cam[0, :3, 3] + [0.0, 0.0, 0.12]
    est = estimate_rig_scale(P, wrong_axis, D)
    assert est.translation_residual_deg == pytest.approx(90.0, abs=2.0) and est.state == "inconsistent"
    # the documented limit: 0.25 baselines across the baseline (14 deg) is caught, 0.1 (5.7 deg) passes
    for across, state in ((0.25, "inconsistent"), (0.10, "ok")):
        off = pair.T_base_cam.copy()
        off[1, :3, 3] += [across * 0.12, 0.0, 0.0]   # base x: along the view, across the baseline
        est = estimate_rig_scale(P, off, D)
        assert est.translation_residual_deg == pytest.approx(np.degrees(np.arctan(across)), abs=1.5)
        assert est.state == state, est.summary()
    # the limit is a setting; out-of-range values are refused
    assert estimate_rig_scale(P, off, D, RigScaleConfig(max_translation_residual_deg=3.0)).state == "inconsistent"
    with pytest.raises(ValueError, match="max_translation_residual_deg"):
        RigScaleConfig(max_translation_residual_deg=0.0)


def test_ring_translation_gate():
    rig = ring(3)
    seq = RigSequence(rig, path_scale=0.5, width=32, height=24)
    rng = np.random.default_rng(4)
    P, u, D, _ = _window(seq, rng)
    est = estimate_rig_scale(P, rig.T_base_cam, D)
    assert est.state == "ok" and est.translation_residual_deg < 2.0
    moved = rig.T_base_cam.copy()
    moved[2, :3, 3] *= -1.0   # cam2 mirrored through the base origin (a sign error in its mount)
    est = estimate_rig_scale(P, moved, D)
    assert est.state == "inconsistent" and est.translation_residual_deg > 30.0


def test_motion_compensated_mounts():
    pair = stereo_pair(0.12)
    T_a = np.eye(4)
    T_a[:3, 3] = [1.0, 2.0, 0.0]
    T_b = T_a.copy()
    T_b[:3, :3] = rotation_from_axis_angle([0.0, 0.0, np.radians(3.0)])
    T_b[:3, 3] += [0.015, 0.0, 0.0]
    M = motion_compensated_mounts(pair.T_base_cam, [T_a, T_b])
    np.testing.assert_array_equal(M[0], pair.T_base_cam[0])
    np.testing.assert_allclose(M[1], invert_transform(T_a) @ T_b @ pair.T_base_cam[1], atol=1e-12)
    np.testing.assert_allclose(M[1][:3, 3] - pair.T_base_cam[1][:3, 3],
                               T_b[:3, :3] @ pair.T_base_cam[1][:3, 3] - pair.T_base_cam[1][:3, 3]
                               + [0.015, 0.0, 0.0], atol=1e-12)
    assert motion_compensated_mounts(pair.T_base_cam, [T_a, None]) is None
    with pytest.raises(ValueError, match="one odometry pose per camera"):
        motion_compensated_mounts(pair.T_base_cam, [T_a])


def test_unsynchronised_rel_error_from_the_windows_own_motion():
    """Two snapshots 0.1 s apart, the rig moving at 2 window units / s along the baseline of a pair 1 unit wide;
    the second camera 10 ms late: 0.02 units of false baseline, 2 %; across the baseline: 0.02^2 / 2 = 0.02 %."""
    for direction, expected in (([1.0, 0.0, 0.0], 0.02), ([0.0, 0.0, 1.0], 0.0002)):
        v = 2.0 * np.asarray(direction)
        P = np.tile(np.eye(4), (2, 2, 1, 1))
        for k, t in enumerate((0.0, 0.1)):
            P[k, 0, :3, 3] = v * t
            P[k, 1, :3, 3] = v * (t + 0.01) + [1.0, 0.0, 0.0]
        stamps = np.array([[0.0, 0.01], [0.1, 0.11]])
        assert unsynchronised_rel_error(P, stamps) == pytest.approx(expected, rel=0.05)
        assert unsynchronised_rel_error(P, np.array([[0.0, 0.0], [0.1, 0.1]])) == 0.0   # one stamp per snapshot
        assert np.isinf(unsynchronised_rel_error(P[:1], stamps[:1]))                    # no velocity: unknown
    pair = stereo_pair(1.0)
    est = estimate_rig_scale(P, pair.T_base_cam, 10.0, unsynchronised_rel=0.2)
    assert est.rel_sigma_unsynchronised == 0.2 and est.relative_uncertainty >= 0.2
    assert est.state in ("unsynchronised", "inconsistent")
    with pytest.raises(ValueError, match="stamps_s"):
        unsynchronised_rel_error(P, stamps[:, :1])
    with pytest.raises(ValueError, match="unsynchronised_rel"):
        estimate_rig_scale(P, pair.T_base_cam, 10.0, unsynchronised_rel=float("nan"))


def test_per_snapshot_known_geometry():
    """``T_base_cam`` (K, C, 4, 4): the known baseline of each snapshot (the rig seen at its cameras' stamps)."""
    base = stereo_pair(0.12).T_base_cam
    known = np.stack([base, base.copy()])
    known[1, 1, :3, 3] += [0.03, 0.0, 0.0]   # snapshot 2: the right camera 3 cm further along base x
    T_base_world = np.eye(4)
    P = np.einsum("ij,kcjl->kcil", T_base_world, known)
    P[..., :3, 3] *= 2.0   # 2 window units per metre
    est = estimate_rig_scale(P, known, 5.0)
    assert est.scale == pytest.approx(0.5, rel=1e-9) and est.residual_rel < 1e-9
    assert estimate_rig_scale(P, base, 5.0).residual_rel > 0.01   # the static mounts do not fit snapshot 2
    with pytest.raises(ValueError, match="snapshots"):
        estimate_rig_scale(P, known[:1].repeat(3, axis=0), 5.0)
