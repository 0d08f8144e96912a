"""da3_ros.camera_models.rectification: raw plumb_bob / rational_polynomial / equidistant images and points are
rectified into the pinhole camera of P (image_proc's convention); maps are cached per calibration; calibrations
that cannot be rectified raise RectificationError with a reason.

The raw test images are made by *inverse mapping* from a pinhole image: every raw pixel is undistorted to the
rectified pixel it shows (the iterative inverse, checked against the forward model, cv2.projectPoints /
cv2.fisheye.distortPoints, to 1e-3 px) and the pinhole texture is evaluated there analytically. Rectifying
then resamples once: bilinear interpolation of the raw image at positions quantised to 1/32 px by the
fixed-point maps. The comparison's tolerance is that of one bilinear resampling of a texture with 1.7 px wide
edges (see ``test_rectified_image_is_the_pinhole_image``); the raw image itself is rendered without
interpolation, so only the rectifier's own resampling is measured."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from da3_ros.camera_models import RawCamera, RectificationError, Rectifier
from da3_ros.camera_models.rectification import DISTORTION_COEFFICIENTS, Rectification

W, H = 640, 480
EYE = np.eye(3).ravel().tolist()


def _P(fx, fy, cx, cy, tx=0.0):
    return [fx, 0.0, cx, tx, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]


def _rotation(deg_xyz):
    return cv2.Rodrigues(np.radians(np.asarray(deg_xyz, dtype=np.float64)))[0]


K_PINHOLE = [500.0, 0.0, 322.0, 0.0, 502.0, 241.0, 0.0, 0.0, 1.0]
#: a barrel lens (k1 = -0.3) with the usual k2 and some tangential distortion
PLUMB_BOB = RawCamera.from_fields(W, H, "plumb_bob", [-0.3, 0.09, 0.001, -0.0005, 0.0], K_PINHOLE, EYE,
                                  _P(480.0, 480.0, 319.5, 239.5))
RATIONAL = RawCamera.from_fields(W, H, "rational_polynomial", [-0.25, 0.05, 0.0005, 0.0003, 0.001, 0.02, -0.01, 0.002],
                                 K_PINHOLE, EYE, _P(490.0, 490.0, 319.5, 239.5))
#: a wide fisheye (equidistant, OpenCV fisheye model) into a 104 deg x 88 deg pinhole view
FISHEYE = RawCamera.from_fields(W, H, "equidistant", [0.05, -0.01, 0.002, -0.0005],
                                [300.0, 0.0, 321.0, 0.0, 300.5, 238.0, 0.0, 0.0, 1.0], EYE,
                                _P(250.0, 250.0, 319.5, 239.5))
#: the right camera of a stereo pair: R rotates it into the common rectified frame, P has the baseline
STEREO_RIGHT = RawCamera.from_fields(W, H, "plumb_bob", [-0.28, 0.08, -0.0007, 0.0004, 0.0], K_PINHOLE,
                                     _rotation([0.8, -1.5, 0.4]).ravel().tolist(),
                                     _P(500.0, 500.0, 318.0, 240.0, tx=-500.0 * 0.12))
CAMERAS = {"plumb_bob": PLUMB_BOB, "rational_polynomial": RATIONAL, "equidistant": FISHEYE,
           "plumb_bob_stereo_right": STEREO_RIGHT}


def _texture(u, v):
    """The pinhole image: a smooth checkerboard (32 px squares, edges tanh(3 x), ~1.7 px wide), one phase per
    channel, evaluated at rectified pixel coordinates (float arrays) -> float (..., 3) in [28, 228]."""
    channels = []
    for phase, period in ((0.0, 32.0), (5.0, 40.0), (11.0, 24.0)):
        s = np.sin(2 * np.pi * (u + phase) / period) * np.sin(2 * np.pi * (v + phase) / period)
        channels.append(128.0 + 100.0 * np.tanh(3.0 * s))
    return np.stack(channels, axis=-1)


def _pinhole_image():
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    return _texture(u, v)


def _raw_image(raw: RawCamera):
    """The raw (distorted) image of the pinhole texture, by inverse mapping (see the module docstring)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    raw_uv = np.stack([u.ravel(), v.ravel()], axis=1)
    rect = raw.rectify_points(raw_uv)
    back = raw.distort_points(rect)
    # raw pixels that the rectified image can sample (inside it, plus a margin) must invert exactly
    seen = (rect[:, 0] > -3) & (rect[:, 0] < W + 2) & (rect[:, 1] > -3) & (rect[:, 1] < H + 2)
    assert seen.mean() > 0.5
    assert np.max(np.abs(back - raw_uv)[seen]) < 1e-3, "the test's inverse mapping does not invert the model"
    image = _texture(rect[:, 0], rect[:, 1]).reshape(H, W, 3)
    image[~seen.reshape(H, W)] = 0.0          # outside what the pinhole view sees (and beyond a barrel's fold)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(CAMERAS))
def test_rectified_image_is_the_pinhole_image(name):
    """Rectified raw image == the pinhole image, within one bilinear resampling.

    Tolerance: the rectified image is a bilinear interpolation of the raw one; on this texture (edges 1.7 px
    wide, 200 grey levels high) bilinear interpolation itself is off by about 1.1 grey levels on average
    (1.5 for the fisheye, whose raw image is smaller than the pinhole view: P magnifies) and by up to about
    one tenth of the edge height on edge pixels, plus +-0.5 from the raw image's rounding to uint8. So: mean
    absolute error < 2, 99th percentile < 10 grey levels; and, isolating the maps from the interpolation,
    the mean error exceeds that of an exact bilinear resampling at the exact source positions (float maps
    from the forward model, RawCamera.distort_points) by less than 0.1 (the fixed-point maps round each
    position to 1/32 px). The unrectified raw image is off by about 70 on average: a wrong map fails."""
    raw = CAMERAS[name]
    rect = Rectification.build(raw)
    assert rect.needs_remap and rect.valid_fraction == 1.0   # P sees only what the raw image holds
    assert rect.camera.K.tolist() == raw.P[:, :3].tolist() and rect.camera.size == (W, H)
    raw_image = _raw_image(raw)
    pinhole = _pinhole_image()
    out = rect.remap(raw_image)
    assert out.shape == raw_image.shape and out.dtype == np.uint8
    err = np.abs(out.astype(np.float64) - pinhole)
    assert err.mean() < 2.0 and np.percentile(err, 99) < 10.0, (err.mean(), np.percentile(err, 99))
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    source = raw.distort_points(np.stack([u.ravel(), v.ravel()], axis=1)).astype(np.float32)
    exact = cv2.remap(raw_image.astype(np.float32), source[:, 0].reshape(H, W), source[:, 1].reshape(H, W),
                      cv2.INTER_LINEAR)
    assert err.mean() - np.abs(exact - pinhole).mean() < 0.1
    assert np.abs(raw_image.astype(np.float64) - pinhole).mean() > 40.0   # without rectification


@pytest.mark.parametrize("name", list(CAMERAS))
def test_points_land_at_the_pinhole_projection_of_P(name):
    """3D points projected by the distorted model land, rectified, at ``P[:3, :3] R X``: exactly through the
    point inverse (1e-6 px, iteration to 1e-12), and within 0.1 px through the image maps (fixed-point maps:
    1/64 px rounding per axis; bilinear interpolation of a smooth map between pixel centres)."""
    raw = CAMERAS[name]
    rng = np.random.default_rng(3)
    expected = np.stack([rng.uniform(5, W - 6, 400), rng.uniform(5, H - 6, 400)], axis=1)   # rectified pixels
    depth = rng.uniform(0.5, 20.0, 400)
    rays = np.linalg.solve(raw.P[:, :3], np.vstack([expected.T, np.ones(400)]))
    X = (raw.R.T @ rays * depth).T                                             # in the raw camera frame
    if raw.distortion_model == "equidistant":
        uv_raw = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), raw.K, raw.D)[0]
    else:
        uv_raw = cv2.projectPoints(X, np.zeros(3), np.zeros(3), raw.K, raw.D)[0]
    uv_raw = uv_raw.reshape(-1, 2)
    projected = (raw.P[:, :3] @ raw.R @ X.T)
    assert np.allclose((projected[:2] / projected[2]).T, expected, atol=1e-9)  # the convention itself
    assert np.max(np.abs(raw.rectify_points(uv_raw) - expected)) < 1e-6
    map_x, map_y = Rectification.build(raw).float_maps()
    at = expected.astype(np.float32).reshape(-1, 1, 2)
    sampled = np.concatenate([cv2.remap(m, at[..., 0], at[..., 1], cv2.INTER_LINEAR) for m in (map_x, map_y)],
                             axis=1)
    assert np.max(np.abs(sampled - uv_raw)) < 0.1


def test_maps_are_built_once_per_calibration():
    rectifier = Rectifier(max_entries=2)
    same = RawCamera.from_fields(W, H, "plumb_bob", PLUMB_BOB.D.tolist(), PLUMB_BOB.K.ravel().tolist(),
                                 PLUMB_BOB.R.ravel().tolist(), PLUMB_BOB.P.ravel().tolist())
    first = rectifier.rectification(PLUMB_BOB)
    assert rectifier.rectification(same) is first and rectifier.builds == 1   # a new camera_info, same numbers
    assert first.build_ms > 0.0
    image = np.zeros((H, W, 3), np.uint8)
    rectified, camera = rectifier.rectify(image, same)
    assert rectifier.builds == 1 and camera.K.tolist() == PLUMB_BOB.P[:, :3].tolist()
    assert rectified.shape == image.shape
    moved = RawCamera.from_fields(W, H, "plumb_bob", PLUMB_BOB.D.tolist(), PLUMB_BOB.K.ravel().tolist(), EYE,
                                  _P(451.0, 451.0, 319.5, 239.5))              # a recalibration
    assert rectifier.rectification(moved) is not first and rectifier.builds == 2
    rectifier.rectification(FISHEYE)                                          # evicts the least recent
    rectifier.rectification(PLUMB_BOB)
    assert rectifier.builds == 4


def test_an_undistorted_camera_is_passed_through_and_a_new_P_still_remaps():
    pinhole = RawCamera.from_fields(W, H, "plumb_bob", [0.0] * 5, K_PINHOLE, EYE,
                                    np.hstack([np.reshape(K_PINHOLE, (3, 3)), np.zeros((3, 1))]).ravel())
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rect = Rectification.build(pinhole)
    assert pinhole.is_pinhole and not rect.needs_remap and rect.remap(image) is image
    # uncalibrated drivers: empty D, R and P all zero -> the same pass-through
    bare = RawCamera.from_fields(W, H, "", [], K_PINHOLE, [0.0] * 9, [0.0] * 12)
    assert bare.is_pinhole and bare.R.tolist() == np.eye(3).tolist() and bare.rectified_camera.K.tolist() == \
        np.reshape(K_PINHOLE, (3, 3)).tolist()
    # no distortion but P != K (a zoomed rectified camera): the remap is a pure homography
    zoomed = RawCamera.from_fields(W, H, "plumb_bob", [0.0] * 5, K_PINHOLE, EYE, _P(250.0, 251.0, 322.0, 241.0))
    rect = Rectification.build(zoomed)
    assert rect.needs_remap
    map_x, map_y = rect.float_maps()
    v, u = np.mgrid[0:H, 0:W]
    assert np.allclose(map_x, (u - 322.0) * 2.0 + 322.0, atol=1 / 32)   # K's focal / P's focal = 2
    assert np.allclose(map_y, (v - 241.0) * 2.0 + 241.0, atol=1 / 32)
    with pytest.raises(ValueError, match="image is 320x240, camera_info says 640x480"):
        rect.remap(np.zeros((240, 320, 3), np.uint8))


@pytest.mark.parametrize("model,d", [("plumb_bob", []), ("rational_polynomial", [0.0] * 8), ("equidistant", [])])
def test_empty_or_zero_D_of_any_model_is_no_distortion(model, d):
    raw = RawCamera.from_fields(W, H, model, d, K_PINHOLE, EYE, [0.0] * 12)
    assert raw.is_pinhole


def _fields(**change):
    fields = dict(width=W, height=H, distortion_model="plumb_bob", d=[-0.3, 0.09, 0.0, 0.0, 0.0], k=K_PINHOLE, r=EYE,
                  p=_P(480.0, 480.0, 319.5, 239.5))
    fields.update(change)
    return fields


@pytest.mark.parametrize("change,reason,message", [
    (dict(distortion_model="kannala_brandt"), "unknown_distortion_model", "'kannala_brandt' is not supported"),
    (dict(distortion_model=""), "unknown_distortion_model", "but no distortion model"),
    (dict(d=[-0.3, 0.09, 0.0, 0.0]), "distortion_length", "plumb_bob needs 5 coefficients in D, got 4"),
    (dict(distortion_model="rational_polynomial"), "distortion_length", "rational_polynomial needs 8"),
    (dict(distortion_model="equidistant"), "distortion_length", "equidistant needs 4 coefficients in D, got 5"),
    (dict(d=[-0.3, float("nan"), 0.0, 0.0, 0.0]), "non_finite", "D contains NaN/Inf"),
    (dict(k=[float("inf")] + K_PINHOLE[1:]), "non_finite", "K contains NaN/Inf"),
    (dict(p=_P(450.0, float("nan"), 319.5, 239.5)), "non_finite", "P contains NaN/Inf"),
    (dict(k=[0.0] * 9), "bad_K", "non-positive focal length"),
    (dict(r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0]), "bad_R", "R is not a rotation"),
    (dict(r=np.diag([1.0, 1.0, -1.0]).ravel().tolist()), "bad_R", "R is not a rotation"),  # a reflection
    (dict(p=_P(-450.0, 450.0, 319.5, 239.5)), "bad_P", "P[:3, :3]"),
    (dict(p=[1.0] * 9), "bad_shape", "P must have 12 numbers, got 9"),
    (dict(width=0), "bad_image_size", "image size 0x480"),
])
def test_unusable_calibrations_raise_with_a_reason(change, reason, message):
    with pytest.raises(RectificationError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        RawCamera.from_fields(**_fields(**change))
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_supported_models_are_the_ros_names():
    assert DISTORTION_COEFFICIENTS == {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
