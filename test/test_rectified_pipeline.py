"""Raw (distorted) cameras through the WindowProcessor: rectified into the pinhole camera of P they give the pinhole
world's depth and cloud; used as if they were pinhole images (rectification off, today's behaviour before issue 19)
they do not.

World (test/distorted_world.py): the synthetic room along room_tour; the pinhole world is the 320x240 70 deg
camera K_P; two lenses see the same poses, a barrel plumb_bob (k1 = -0.3) and an equidistant fisheye, both
calibrated into P = [K_P | 0]. Their raw images are ray-cast through the lens (colour and z-depth of each raw
pixel's true ray). The backend is the oracle (ground truth + its depth noise, warp and low-confidence blobs, one
random scale per window) over the world a network would see: the pinhole world for a rectified image (the
rectified image shows it), the raw world for a raw image. The network input size equals the camera's, so the
oracle identifies each input by its bytes.

Metrics, per frame after the window's scale (median ratio to the truth): depth AbsRel of the published depth
against the pinhole truth of the camera the node publishes it with (depth/camera_info: P with rectification,
K without), and the cloud error: distance of each published point from the scene point its pixel actually sees,
relative to that point's depth (median over pixels).
"""
from __future__ import annotations

import numpy as np
import pytest
from distorted_world import W, H, RawWorldSequence, oracle_backend, pinhole_world, raw_cameras

from da3_ros.camera_models import RawCamera, Rectifier
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.pipeline.camera_stream import CameraFrame
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor

FRAMES = (0, 45, 90, 135)
CONFIG = ProcessorConfig(window_size=1, point_stride=1, confidence_threshold=0.0, min_depth=1e-4, max_depth=1e4)


@pytest.fixture(scope="module")
def world():
    return pinhole_world()


def _metrics(out, truth_depth: np.ndarray, truth_points: np.ndarray) -> tuple[float, float]:
    """(depth AbsRel, median relative cloud error) of one camera output after its scale (see the module doc)."""
    d = out.depth
    ok = np.isfinite(d) & (d > 0) & (truth_depth > 0) & np.isfinite(truth_depth)
    s = float(np.median(d[ok] / truth_depth[ok]))
    absrel = float(np.mean(np.abs(d[ok] / s - truth_depth[ok]) / truth_depth[ok]))
    pts = out.points / s
    fin = np.isfinite(pts).all(-1) & ok
    err = np.linalg.norm(pts[fin] - truth_points[fin], axis=-1) / truth_points[fin][:, 2]
    return absrel, float(np.median(err))


def _run(proc, images, cameras):
    return [proc.process([CameraFrame(images[i], i + 1, cameras[i])]).reference for i in FRAMES]


def _pinhole_world_metrics(tmp_path, world):
    K_P = world.K
    images = {i: world.render(i)[0] for i in FRAMES}
    proc = WindowProcessor(oracle_backend(tmp_path, "pinhole", images), CONFIG)
    # a pinhole camera_info (D empty, P = K) is a RawCamera that rectifies to itself (no remap)
    cam = RawCamera.from_fields(W, H, "plumb_bob", [], K_P.ravel(), np.eye(3).ravel(),
                                np.hstack([K_P, np.zeros((3, 1))]).ravel())
    outs = _run(proc, images, {i: cam for i in FRAMES})
    assert proc.describe()["rectification"] == "none (pinhole camera)"
    rays = PinholeCamera(W, H, K_P).ray_grid(dtype=np.float64)
    return [_metrics(o, world.render(i)[1], world.render(i)[1][..., None] * rays) for o, i in zip(outs, FRAMES)]


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_rectified_raw_camera_gives_the_pinhole_worlds_depth_and_cloud(tmp_path, world, model):
    raw = raw_cameras(world.K)[model]
    raw_world = RawWorldSequence(world, raw)
    raw_images = {i: raw_world.render(i)[0] for i in FRAMES}
    pinhole = _pinhole_world_metrics(tmp_path, world)

    # rectification on: the network sees the rectified image, i.e. the pinhole world
    rectifier = Rectifier()
    rectified = {i: rectifier.rectify(raw_images[i], raw)[0] for i in FRAMES}
    for i in FRAMES:   # the rectified image is the pinhole image (two bilinear resamplings: a blur of ~1 px)
        pin = world.render(i)[0].astype(np.float32)
        inside = rectified[i].any(-1)
        assert inside.mean() > 0.97
        assert np.median(np.abs(rectified[i].astype(np.float32) - pin)[inside]) < 6.0
    proc = WindowProcessor(oracle_backend(tmp_path, f"{model}_on", rectified), CONFIG)
    outs_on = _run(proc, raw_images, {i: raw for i in FRAMES})
    assert proc.describe()["rectification"].startswith(f"{model} -> P")
    rays_P = PinholeCamera(W, H, world.K).ray_grid(dtype=np.float64)
    on = []
    for out, i in zip(outs_on, FRAMES):
        cam = out.camera_intrinsics
        np.testing.assert_array_equal(cam.K, world.K)             # published camera: P[:3, :3]
        assert cam.distortion.size == 0 and not cam.is_distorted    # D empty: the image is rectified
        np.testing.assert_array_equal(out.point_colours, rectified[i])   # colours of the rectified image
        on.append(_metrics(out, world.render(i)[1], world.render(i)[1][..., None] * rays_P))

    # rectification off: the raw image as if it were a pinhole image of K (what the node did before issue 19)
    proc = WindowProcessor(oracle_backend(tmp_path, f"{model}_off", raw_images, world=raw_world), CONFIG)
    K_only = PinholeCamera(W, H, raw.K)
    outs_off = _run(proc, raw_images, {i: K_only for i in FRAMES})
    off = []
    for out, i in zip(outs_off, FRAMES):
        truth_K = world.renderer.render(raw.K, world.T_world_cam[i], W, H)[1]   # the pinhole truth of camera K
        raw_depth = raw_world.render(i)[1]
        off.append(_metrics(out, truth_K, raw_depth[..., None] * raw_world.rays))   # points the pixels see

    pin, on, off = (np.mean(np.asarray(m), axis=0) for m in (pinhole, on, off))
    print(f"{model}: AbsRel / cloud error: pinhole {pin[0]:.4f} / {pin[1]:.4f}, rectified {on[0]:.4f} / "
          f"{on[1]:.4f}, unrectified {off[0]:.4f} / {off[1]:.4f}")
    # within 0.5 % (absolute) of the pinhole world's with rectification on ...
    assert abs(on[0] - pin[0]) <= 0.005 and abs(on[1] - pin[1]) <= 0.005
    # ... and clearly worse without it (the lens bends every ray away from K's)
    assert off[0] > 2.0 * pin[0] and off[1] > 3.0 * pin[1]
