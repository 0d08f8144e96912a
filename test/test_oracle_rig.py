"""The oracle backend serves rig windows (issue 14): views of several cameras and rig poses in one window, looked
up by digest as view ids ``index * C + camera``; the cameras' relative pose is the rig's extrinsics in the window's
scale (plus the configured noise); ``noise`` overrides of ``OracleNoise`` in the spec (rig or not)."""
import json

import numpy as np
import pytest

from da3_ros.backends.oracle_backend import OracleBackend, oracle_noise, write_oracle_spec
from da3_ros.geometry.transforms import camera_centre_from_extrinsics, extrinsics_to_T_world_cam, invert_transform
from da3_ros.synthetic.rig import RigWorld
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import OracleNoise

W, H = 80, 60
BASELINE = 0.12
# (i0, i1) rig poses per window: forward, turn, rotate and forward segments (not the stop, whose images repeat)
PAIRS = [(10, 12), (25, 27), (40, 44), (70, 72), (110, 113), (130, 132), (150, 152), (200, 202), (230, 232), (260, 262)]
LEFT, RIGHT = 0, 1


def _stereo_spec(tmp_path, name, noise=None):
    world = RigWorld("stereo", baseline=BASELINE)
    seq = world.sequence(W, H)
    frames = {seq.view_id(c, i): seq.render(c, i)[0] for pair in PAIRS for i in pair for c in (LEFT, RIGHT)}
    spec = write_oracle_spec(tmp_path / name, frames, width=W, height=H, views=4, rig=world.to_dict(), noise=noise)
    return spec, seq


def _window(seq, i0, i1):
    """Views [(i0, left), (i0, right), (i1, left), (i1, right)] as the node would feed them."""
    return np.stack([seq.render(c, i)[0] for i in (i0, i1) for c in (LEFT, RIGHT)])


def _baselines(backend, seq):
    """Per window: (window scale, median true depth of view 0 (m), left->right translation in the left camera
    frame, in metres (predicted / window scale), at i0 and at i1) -> arrays (K,), (K,), (K, 2, 3)."""
    scales, meds, t_lr = [], [], []
    for i0, i1 in PAIRS:
        pred = backend.infer(_window(seq, i0, i1))
        truth = backend.last_window
        assert truth.frame_ids == [seq.view_id(c, i) for i in (i0, i1) for c in (LEFT, RIGHT)]
        T_ref_view = extrinsics_to_T_world_cam(pred.extrinsics)             # camera -> window (ref = left at i0)
        rel = [invert_transform(T_ref_view[a]) @ T_ref_view[a + 1] for a in (0, 2)]
        scales.append(truth.scale)
        meds.append(float(np.median(seq.render(LEFT, i0)[1])))
        t_lr.append([T[:3, 3] / truth.scale for T in rel])
    return np.array(scales), np.array(meds), np.array(t_lr)


def test_stereo_window_gives_the_rig_baseline_in_window_scale(tmp_path):
    spec, seq = _stereo_spec(tmp_path, "stereo.json", noise={"translation_noise": 0.0005})
    data = json.loads(spec.read_text())["oracle"]
    assert data["rig"] == {"preset": "stereo", "baseline": 0.12, "num_cameras": 3, "path": "room_tour",
                           "path_scale": 1.0, "seed": 0, "yaw_deg": 0.0, "camera_offset_s": 0.0}
    assert data["noise"] == {"translation_noise": 0.0005} and len(data["frames"]) == 4 * len(PAIRS)
    backend = OracleBackend(str(spec))
    assert (backend.views, backend.height, backend.width) == (4, H, W)
    assert backend.oracle.noise == OracleNoise(translation_noise=0.0005)     # the override, every other default
    assert len(backend.sequence) == 2 * len(seq)
    scales, meds, t_lr = _baselines(backend, seq)
    assert len(set(np.round(scales, 6))) == len(PAIRS)          # each window has its own (random) scale
    # oracle pose noise: per axis sigma = translation_noise x median depth of view 0 on each non-reference view's
    # centre; the pair at i0 holds one such draw (its left view is the exact reference), the pair at i1 two
    sigma = np.array([1.0, np.sqrt(2.0)])[None, :] * 0.0005 * meds[:, None]          # (K, 2) metres per axis
    z = (t_lr - [BASELINE, 0.0, 0.0]) / sigma[..., None]                                # (K, 2, 3) unit normal
    # 5.5 sigma bounds every value for any seed (60 values: a miss has probability ~2e-6); the rotation noise
    # (0.2 deg per axis) turns the 0.12 m vector of the i1 pair by ~0.0004 m, < 0.2 sigma
    assert np.abs(z).max() < 5.5, z
    # and the spread is the configured one: RMS of 60 unit-variance values is 1 +- 0.09 (1 sigma); bounds at
    # >= 4 sigma either way (the default noise, 4x larger, gives ~4)
    assert 0.6 < float(np.sqrt(np.mean(z ** 2))) < 1.4, z
    baseline = np.linalg.norm(t_lr, axis=2)
    assert np.all(np.abs(baseline - BASELINE) < 5.5 * sigma), baseline   # the metric baseline the rig scale reads
    # the same windows at the default noise (0.002): the seeded draws are identical, so the reference pair's
    # centre error (view 1 against the exact reference view 0) is exactly 4x larger (float32 rounding ~1e-6)
    default_spec, _ = _stereo_spec(tmp_path, "default.json")
    assert "noise" not in json.loads(default_spec.read_text())["oracle"]
    default_backend = OracleBackend(str(default_spec))
    assert default_backend.oracle.noise == OracleNoise()
    d_scales, _, d_t_lr = _baselines(default_backend, seq)
    np.testing.assert_allclose(d_scales, scales, rtol=1e-12)
    c_err = np.linalg.norm(t_lr[:, 0] - [BASELINE, 0, 0], axis=1)
    d_err = np.linalg.norm(d_t_lr[:, 0] - [BASELINE, 0, 0], axis=1)
    assert c_err.min() > 1e-4                                   # the noise is there, far above float32 rounding
    np.testing.assert_allclose(d_err / c_err, 4.0, rtol=1e-3)


def test_stereo_window_without_pose_noise_is_exact(tmp_path):
    spec, seq = _stereo_spec(tmp_path, "exact.json", noise={"translation_noise": 0.0, "rotation_noise_deg": 0.0})
    backend = OracleBackend(str(spec))
    _, _, t_lr = _baselines(backend, seq)
    # only float32 rounding of window coordinates (a few window units, ~1e-7 relative) remains
    np.testing.assert_allclose(t_lr, np.broadcast_to([BASELINE, 0.0, 0.0], t_lr.shape), atol=1e-5)
    # the motion between the rig poses is the ground truth too: left at i1 in the frame of left at i0
    for i0, i1 in PAIRS[:2]:
        pred = backend.infer(_window(seq, i0, i1))
        T_ref_view = extrinsics_to_T_world_cam(pred.extrinsics)
        truth = invert_transform(seq.T_world_cam[i0, LEFT]) @ seq.T_world_cam[i1, LEFT]
        np.testing.assert_allclose(T_ref_view[2][:3, 3] / backend.last_window.scale, truth[:3, 3], atol=1e-5)
        np.testing.assert_allclose(T_ref_view[2][:3, :3], truth[:3, :3], atol=1e-5)


def test_ring_window_mixes_three_cameras(tmp_path):
    world = RigWorld("ring", num_cameras=3, path_scale=0.2)
    seq = world.sequence(W, H)
    ids = [(0, 5), (1, 5), (2, 5), (0, 7)]   # (camera, index)
    frames = {seq.view_id(c, i): seq.render(c, i)[0] for c, i in ids}
    spec = write_oracle_spec(tmp_path / "ring.json", frames, width=W, height=H, rig=world.to_dict(),
                             noise={"translation_noise": 0.0, "rotation_noise_deg": 0.0})
    backend = OracleBackend(str(spec), views=4)
    pred = backend.infer(np.stack([seq.render(c, i)[0] for c, i in ids]))
    assert backend.last_window.frame_ids == [i * 3 + c for c, i in ids]
    centres = camera_centre_from_extrinsics(pred.extrinsics) / backend.last_window.scale
    # neighbours of a 0.10 m ring 120 deg apart: chord 0.10 * sqrt(3); float32 rounding only
    for a, b in ((0, 1), (1, 2), (2, 0)):
        assert np.linalg.norm(centres[a] - centres[b]) == pytest.approx(0.10 * np.sqrt(3.0), abs=1e-5)
    with pytest.raises(ValueError, match="not a frame of the synthetic sequence"):
        backend.infer(np.stack([seq.render(c, 6)[0] for c in (0, 1, 2, 0)]))   # rig pose 6 was never published


def test_noise_overrides_for_a_single_camera_spec(tmp_path):
    seq = SyntheticSequence("room_tour", width=W, height=H)
    frames = {i: seq.render(i)[0] for i in (30, 31, 32)}
    spec = write_oracle_spec(tmp_path / "mono.json", frames, width=W, height=H, views=3,
                             noise={"translation_noise": 0.0, "rotation_noise_deg": 0.0, "scale_range": [2.0, 2.0]})
    backend = OracleBackend(str(spec))
    assert backend.oracle.noise.scale_range == (2.0, 2.0) and backend.rig_sequence is None
    pred = backend.infer(np.stack([frames[i] for i in (30, 31, 32)]))
    assert backend.last_window.scale == pytest.approx(2.0, rel=1e-12)
    T = extrinsics_to_T_world_cam(pred.extrinsics)
    truth = invert_transform(seq.T_world_cam[30]) @ seq.T_world_cam[32]
    np.testing.assert_allclose(T[2][:3, 3] / 2.0, truth[:3, 3], atol=1e-5)   # float32 rounding only


def test_bad_noise_and_rig_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown oracle noise field\(s\) \['translation_nosie'\]"):
        oracle_noise({"translation_nosie": 0.001})
    with pytest.raises(ValueError, match="bad value"):
        oracle_noise({"depth_noise": "a lot"})
    frames = {0: np.zeros((H, W, 3), np.uint8)}
    with pytest.raises(ValueError, match="unknown oracle noise field"):
        write_oracle_spec(tmp_path / "w.json", frames, width=W, height=H, noise={"sigma": 1.0})
    with pytest.raises(ValueError, match="unknown rig world keys"):
        write_oracle_spec(tmp_path / "w.json", frames, width=W, height=H, rig={"preset": "stereo", "fps": 10})
    # a spec edited (or written by another tool) with a bad key is refused when the backend reads it
    spec, _ = _stereo_spec(tmp_path, "edited.json")
    data = json.loads(spec.read_text())
    data["oracle"]["noise"] = {"translation_noise": 0.001, "rotatoin_noise_deg": 0.1}
    spec.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"unknown oracle noise field\(s\) \['rotatoin_noise_deg'\]"):
        OracleBackend(str(spec))
    data["oracle"].pop("noise")
    data["oracle"]["rig"]["preset"] = "trinocular"
    spec.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unknown rig preset 'trinocular'"):
        OracleBackend(str(spec))
