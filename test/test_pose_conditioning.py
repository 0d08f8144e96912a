"""Pose-conditioned windows: parity with the official ``inference(extrinsics=..., intrinsics=...)``.

Official side: the real ``DepthAnything3.inference`` (input processor, extrinsics normalisation, model,
output processor, ``align_poses_umeyama``, ``depth / scale``) on a random-weight da3-small, in fp32
(see test/da3_official_api.py for the stand-ins of its uninstalled optional imports). Our side: the same
weights saved in the HF layout and loaded by ``load_model``, ``preprocess_images`` + ``intrinsics_to_network``
+ :class:`PoseConditionedWindow`. Three real frames (soh_000, soh_010, robot_unitree.mp4 frame 40 resized).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from da3_official_api import official_api, official_pose_align
from da3_reference import make_official_model, max_rel_error, save_hf_checkpoint
from da3_ros.geometry.pose_conditioning import (PoseConditionedWindow, PoseConditioningError,
                                                da3_extrinsics_from_T_world_cam, fit_prediction_to_given_scale)
from da3_ros.geometry.transforms import invert_transform, make_transform, rotation_from_axis_angle
from da3_ros.model import load_model
from da3_official_preprocessing import intrinsics_to_network, plan_resize, preprocess_images, resize_image

# Parity bound of the brief. Both sides run the same fp32 network on identical pixels (same cv2 resize);
# measured errors are ~1e-7 (float32 rounding in a different operation order), so 1e-4 holds on any x86 CPU.
DEPTH_TOL = 1e-4
PROCESS_RES = 252  # 1208x680 -> 252x140: small enough for a seconds-long test, still 18x10 patches


def _data_dir() -> Path | None:
    for d in (Path(__file__).resolve().parents[1] / ".." / "shared" / "data", Path("/work/shared/data")):
        if (d / "soh_000.png").is_file() and (d / "soh_010.png").is_file() and (d / "robot_unitree.mp4").is_file():
            return d
    return None


@pytest.fixture(scope="module")
def frames():
    d = _data_dir()
    if d is None:
        pytest.skip("../shared/data (soh_000.png, soh_010.png, robot_unitree.mp4) is not present")
    imgs = [cv2.cvtColor(cv2.imread(str(d / f)), cv2.COLOR_BGR2RGB) for f in ("soh_000.png", "soh_010.png")]
    cap = cv2.VideoCapture(str(d / "robot_unitree.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, bgr = cap.read()
    cap.release()
    assert ok, "could not decode robot_unitree.mp4"
    h, w = imgs[0].shape[:2]
    imgs.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_AREA))
    return imgs


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    official = make_official_model("da3-small", seed=0)
    ckpt = save_hf_checkpoint(official, tmp_path_factory.mktemp("da3-small-pose"), "da3-small")
    return official_api(official), load_model(ckpt)


@pytest.fixture(scope="module")
def metre_window(models, frames):
    """(official prediction, (our window, raw output, aligned)) for the metre poses, computed once."""
    api, ours = models
    T_wc = _poses()
    K = _camera_K(frames[0].shape[:2])
    return _official(api, frames, invert_transform_batch(T_wc), K), _ours(ours, frames, T_wc, K)


def _poses() -> np.ndarray:
    """Three camera-to-world poses in an odom-like world (metres, far from the origin, non-collinear)."""
    rots = [rotation_from_axis_angle(v) for v in ([0.05, -0.1, 0.02], [0.1, 0.15, -0.05], [-0.08, 0.3, 0.1])]
    centres = [[4.0, -2.0, 0.6], [4.35, -1.9, 0.62], [4.2, -1.55, 0.7]]
    return np.stack([make_transform(r, c) for r, c in zip(rots, centres)])


def _camera_K(hw) -> np.ndarray:
    h, w = hw
    return np.array([[0.9 * w, 0.0, 0.5 * w + 3.0], [0.0, 0.88 * w, 0.5 * h - 2.0], [0.0, 0.0, 1.0]])


def _official(api, frames, extrinsics, K):
    n = len(frames)
    return api.inference(list(frames), extrinsics=np.asarray(extrinsics, np.float32),
                         intrinsics=np.repeat(K[None].astype(np.float32), n, axis=0),
                         align_to_input_ext_scale=True, process_res=PROCESS_RES)


def _ours(model, frames, T_world_cam, K):
    x, plans = preprocess_images(list(frames), process_res=PROCESS_RES)
    window = PoseConditionedWindow.from_poses(T_world_cam, intrinsics_to_network(K, plans[0]), plans[0].network_hw)
    with torch.inference_mode():
        out = model(x, pose_encoding=torch.from_numpy(window.pose_encoding))
    return window, out, window.align(out["depth"], out["extrinsics"])


def test_pose_conditioned_window_matches_official_inference(metre_window):
    T_wc = _poses()
    ref, (window, raw, res) = metre_window
    assert res.depth.shape == ref.depth.shape == (3, 140, 252)
    err = max_rel_error(torch.from_numpy(res.depth), torch.from_numpy(ref.depth))
    assert err <= DEPTH_TOL, err
    # extrinsics: both return the given world->camera poses (float32); 1e-6 = float32 rounding of an inverse
    np.testing.assert_allclose(res.extrinsics, ref.extrinsics, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.intrinsics, ref.intrinsics, rtol=1e-6)  # same per-axis scaling of K
    assert res.scale > 0 and np.isfinite(res.pose_residual)
    # the depth really was rescaled into metres: raw network depth / scale
    np.testing.assert_allclose(res.depth, raw["depth"][0].numpy() / res.scale, rtol=1e-6)
    # the normalised poses the encoder saw: view 0 identity, median distance of the others 1
    # (float32 like the official code: E_0 inv(E_0) with |t| ~ 4.5 m leaves ~1e-6, hence 1e-5)
    np.testing.assert_allclose(window.normalised_extrinsics[0], np.eye(4), atol=1e-5)
    c = -np.einsum("nji,nj->ni", window.normalised_extrinsics[:, :3, :3], window.normalised_extrinsics[:, :3, 3])
    assert abs(np.median(np.linalg.norm(c, axis=1)) - 1.0) < 1e-5
    baselines = np.linalg.norm(T_wc[:, :3, 3] - T_wc[0, :3, 3], axis=1)
    assert abs(window.normalisation_distance - np.median(baselines)) < 1e-6


def test_exported_pose_conditioned_graph_matches_official_inference(models, frames, metre_window, tmp_path):
    """The deployed path: the pose-conditioned ONNX graph (ONNX Runtime CPU) fed our pose encoding.

    4-13 s on the 2-core machine, almost all of it the export of da3-small. Same 1e-4 bound: ORT and torch
    differ by float32 re-association only (measured 5.3e-7 relative)."""
    ort = pytest.importorskip("onnxruntime")
    from da3_ros.export.onnx_export import export_model_to_onnx

    _, ours = models
    T_wc = _poses()
    K = _camera_K(frames[0].shape[:2])
    plan = plan_resize(frames[0].shape[:2], PROCESS_RES)
    h, w = plan.network_hw
    path = tmp_path / "da3_small_pose3.onnx"
    export_model_to_onnx(ours, path, views=3, height=h, width=w, pose_conditioned=True, verbose=False)
    window = PoseConditionedWindow.from_poses(T_wc, intrinsics_to_network(K, plan), (h, w))
    images = np.stack([resize_image(f, plan) for f in frames])[None]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"images": images, "pose_encoding": window.pose_encoding})))
    res = window.align(out["depth"], out["extrinsics"])
    ref, _ = metre_window
    err = max_rel_error(torch.from_numpy(res.depth), torch.from_numpy(ref.depth))
    assert err <= DEPTH_TOL, err
    np.testing.assert_allclose(res.extrinsics, ref.extrinsics, rtol=0, atol=1e-6)


def test_depth_follows_the_unit_of_the_given_poses(models, frames, metre_window):
    """Same poses in centimetres: the official and our depth are 100x the metre depth (to 1e-4)."""
    api, ours = models
    T_wc = _poses()
    K = _camera_K(frames[0].shape[:2])
    _, (_, _, metres) = metre_window
    T_cm = T_wc.copy()
    T_cm[:, :3, 3] *= 100.0
    _, _, cm = _ours(ours, frames, T_cm, K)
    ref_cm = _official(api, frames, invert_transform_batch(T_cm), K)
    assert max_rel_error(torch.from_numpy(cm.depth), torch.from_numpy(ref_cm.depth)) <= DEPTH_TOL
    # normalisation removes the unit, so the network saw the same input; only the alignment differs
    assert max_rel_error(torch.from_numpy(cm.depth), torch.from_numpy(100.0 * metres.depth)) <= DEPTH_TOL


def test_camera_to_world_passed_as_world_to_camera_gives_another_answer(models, frames, metre_window):
    """The itu-auv mistake (handing T_world_cam where DA3 expects world->camera) is not silently equivalent."""
    api, ours = models
    T_wc = _poses()
    K = _camera_K(frames[0].shape[:2])
    right, (_, _, res) = metre_window
    wrong = _official(api, frames, T_wc, K)  # camera-to-world given as extrinsics
    assert max_rel_error(torch.from_numpy(res.depth), torch.from_numpy(right.depth)) <= DEPTH_TOL
    assert max_rel_error(torch.from_numpy(res.depth), torch.from_numpy(wrong.depth)) > 1e-2
    # and the same mistake on our side (extrinsics handed over as T_world_cam) reproduces the wrong answer
    _, _, mistaken = _ours(ours, frames, invert_transform_batch(T_wc), K)
    assert max_rel_error(torch.from_numpy(mistaken.depth), torch.from_numpy(wrong.depth)) <= DEPTH_TOL


def invert_transform_batch(T: np.ndarray) -> np.ndarray:
    return np.stack([invert_transform(t) for t in T])


def test_world_to_camera_conversion_is_pinned():
    # camera at (1, 2, 3) whose optical axis (z) points along world +x, image x right = world -y
    R = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    T_world_cam = make_transform(R, [1.0, 2.0, 3.0])
    E = da3_extrinsics_from_T_world_cam(T_world_cam)
    p_world = np.array([1.0 + 2.0, 2.0 - 0.5, 3.0, 1.0])  # 2 m ahead, 0.5 m to the right
    np.testing.assert_allclose(E @ p_world, [0.5, 0.0, 2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(E @ [1.0, 2.0, 3.0, 1.0], [0, 0, 0, 1], atol=1e-12)
    with pytest.raises(PoseConditioningError, match="orthonormal"):
        da3_extrinsics_from_T_world_cam(make_transform(R, [0, 0, 0], s=2.0))
    with pytest.raises(PoseConditioningError, match="shape"):
        PoseConditionedWindow.from_poses(np.eye(4), np.eye(3), (14, 14))
    with pytest.raises(PoseConditioningError, match="focal"):
        PoseConditionedWindow.from_poses(np.eye(4)[None], np.zeros((3, 3)), (14, 14))


def test_scale_fit_matches_official_align_poses_umeyama_including_ransac():
    """Our fit vs the official ``align_poses_umeyama`` (plain for N < 10, RANSAC with seed 42 from N = 10)."""
    pose_align = official_pose_align()
    rng = np.random.default_rng(3)
    for n, ransac in ((3, False), (6, False), (12, True), (15, True)):
        T_given = np.stack([make_transform(rotation_from_axis_angle(rng.normal(size=3) * 0.3), rng.normal(size=3))
                            for _ in range(n)])
        sim = make_transform(rotation_from_axis_angle(rng.normal(size=3)), rng.normal(size=3), s=0.37)
        T_pred = np.stack([sim @ t for t in T_given])
        T_pred[:, :3, :3] /= 0.37
        T_pred[:, :3, 3] += rng.normal(size=(n, 3)) * 0.01
        if ransac:
            T_pred[1, :3, 3] += 3.0  # an outlier view that RANSAC should drop
            T_pred[4, :3, 3] -= 2.0
        e_given, e_pred = invert_transform_batch(T_given), invert_transform_batch(T_pred)
        _, _, s_off = pose_align.align_poses_umeyama(e_pred, e_given, ransac=n >= 10, return_aligned=False,
                                                     random_state=42)
        s_ours = fit_prediction_to_given_scale(T_given[:, :3, 3], T_pred[:, :3, 3])
        s_ours = np.cbrt(np.linalg.det(s_ours[:3, :3]))
        assert abs(s_ours - s_off) <= 1e-9 * s_off, (n, s_ours, s_off)  # float64 on both sides
        if ransac:
            assert abs(s_off - 0.37) < 0.01  # the outliers were rejected


def test_degenerate_windows():
    """Collinear centres / two views: the scale is defined (official evo raises); coincident: clear error."""
    line = np.stack([make_transform(np.eye(3), [0.3 * i, 0.0, 0.0]) for i in range(3)])
    s = fit_prediction_to_given_scale(line[:, :3, 3], 2.5 * line[:, :3, 3] + 1.0)
    assert abs(np.cbrt(np.linalg.det(s[:3, :3])) - 2.5) < 1e-9
    # two views: exact Sim(3) (scale = baseline ratio), also for opposite baseline directions
    R = rotation_from_axis_angle([0.3, -0.2, 1.0])
    for d_pred in (R @ [0.3, 0.0, 0.0] * 0.5, [-0.15, 0.0, 0.0]):
        c_pred = np.stack([[1.0, 2.0, 3.0], np.add([1.0, 2.0, 3.0], d_pred)])
        two = fit_prediction_to_given_scale(line[:2, :3, 3], c_pred)
        np.testing.assert_allclose(line[:2, :3, 3] @ two[:3, :3].T + two[:3, 3], c_pred, atol=1e-12)
        assert abs(np.cbrt(np.linalg.det(two[:3, :3])) - 0.5) < 1e-12
    window2 = PoseConditionedWindow.from_poses(line[:2], np.eye(3) * 50, (28, 28))
    pred2 = invert_transform_batch(np.stack([make_transform(R, [0.0, 0.0, 0.0]), make_transform(R, d_pred)]))
    aligned2 = window2.align(np.full((2, 28, 28), 3.0), pred2)
    assert aligned2.scale == pytest.approx(0.5) and aligned2.pose_residual < 1e-9
    np.testing.assert_allclose(aligned2.depth, 6.0, rtol=1e-6)
    same = np.zeros((3, 3))
    with pytest.raises(PoseConditioningError, match="no baseline"):
        fit_prediction_to_given_scale(same, np.random.default_rng(0).normal(size=(3, 3)))
    window = PoseConditionedWindow.from_poses(np.repeat(np.eye(4)[None], 3, axis=0), np.eye(3) * 50, (28, 28))
    assert window.normalisation_distance == pytest.approx(0.1)  # the official clamp
    with pytest.raises(PoseConditioningError, match="no baseline"):
        window.align(np.ones((3, 28, 28)), np.repeat(np.eye(4)[None, :3], 3, axis=0))


# ---- the synthetic oracle follows a pose-conditioned window (ground truth known) ----

def _oracle_window(T_odom_world: np.ndarray, unit_per_metre: float, ids=(0, 12, 24, 36)):
    from da3_ros.synthetic.sequence import SyntheticSequence
    from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle

    seq = SyntheticSequence(width=64, height=48)
    zero = OracleNoise(depth_noise=0, depth_warp=0, rotation_noise_deg=0, translation_noise=0, low_conf_blobs=0)
    T_given = np.stack([T_odom_world @ seq.T_world_cam[i] for i in ids])
    T_given[:, :3, 3] *= unit_per_metre
    truth = np.stack([seq.render(i)[1] for i in ids])
    return seq, WindowOracle(seq, noise=zero, seed=2), list(ids), T_given, truth


def test_oracle_follows_the_given_poses_and_alignment_recovers_their_unit():
    T_odom_world = make_transform(rotation_from_axis_angle([0.0, 0.0, 0.7]), [12.0, -4.0, 0.3])
    seq, oracle, ids, T_given, truth = _oracle_window(T_odom_world, 100.0)  # given poses in centimetres
    window = PoseConditionedWindow.from_poses(T_given, seq.K, (48, 64))
    p = oracle.predict(ids, ref_view="last", pose_encoding=window.pose_encoding)
    assert p.ref_index == 0  # a conditioned window's reference is view 0 (ref_view unused)
    # the oracle's window frame is the encoding's: view 0 identity, the normalised unit per metre
    np.testing.assert_allclose(p.extrinsics[0], np.eye(4)[:3], atol=1e-6)
    assert abs(p.scale - 100.0 / window.normalisation_distance) < 1e-4 * p.scale
    np.testing.assert_allclose(p.depth, p.scale * truth, rtol=1e-6)
    res = window.align(p.depth, p.extrinsics)
    # aligned back: the true scene in centimetres; 1e-4 = float32 encoding (quaternion, translations)
    np.testing.assert_allclose(res.depth, 100.0 * truth, rtol=1e-4)
    assert res.pose_residual < 1e-4 * window.normalisation_distance
    np.testing.assert_allclose(res.extrinsics, window.extrinsics[:, :3], atol=0)
    # unconditioned windows are unchanged: drawn scale, reference-view frame
    q = oracle.predict(ids)
    assert 0.3 <= q.scale <= 3.0 and abs(q.scale - p.scale) > 1e-3
    with pytest.raises(ValueError, match="pose_encoding"):
        oracle.predict(ids, pose_encoding=window.pose_encoding[:, :2])


def test_oracle_with_swapped_convention_gives_a_wrong_scene():
    """Handing world->camera extrinsics over as T_world_cam (the itu-auv mistake): metres come out wrong."""
    T_odom_world = make_transform(rotation_from_axis_angle([0.0, 0.0, 0.7]), [12.0, -4.0, 0.3])
    seq, oracle, ids, T_given, truth = _oracle_window(T_odom_world, 1.0)
    right = PoseConditionedWindow.from_poses(T_given, seq.K, (48, 64))
    wrong = PoseConditionedWindow.from_poses(invert_transform_batch(T_given), seq.K, (48, 64))
    good = right.align(*_depth_extr(oracle.predict(ids, pose_encoding=right.pose_encoding)))
    bad = wrong.align(*_depth_extr(oracle.predict(ids, pose_encoding=wrong.pose_encoding)))
    np.testing.assert_allclose(good.depth, truth, rtol=1e-4)
    assert np.median(np.abs(bad.depth / truth - 1.0)) > 0.1


def _depth_extr(p):
    return p.depth, p.extrinsics
