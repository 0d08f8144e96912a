"""PinholeCamera: pixel-centre convention, DA3 conversion, resize/crop, unprojection, validation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from da3_official_preprocessing import da3_network_intrinsics

from da3_ros.geometry.camera import InvalidCameraError, PinholeCamera
from da3_ros.model.metric import canonical_to_metric_depth  # noqa: F401  (import check)
from da3_ros.pipeline.network_input import NetworkInputMapping


def _cam(w=140, h=100, fx=200.0, fy=180.0, cx=73.5, cy=48.0):
    return PinholeCamera.from_focal(w, h, fx, fy, cx, cy)


def test_unprojected_points_project_back_to_pixel_centres():
    cam = _cam()
    rng = np.random.default_rng(0)
    depth = 1 + rng.random((100, 140))
    pts = cam.unproject(depth)
    assert pts.shape == (100, 140, 3) and pts.dtype == np.float64
    np.testing.assert_allclose(pts[..., 2], depth)
    uv = cam.project(pts)
    # pixel (row i, column j) is at (u, v) = (j, i): centres at integers (ROS / OpenCV)
    np.testing.assert_allclose(uv[..., 0], np.broadcast_to(np.arange(140.0), (100, 140)), atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], np.broadcast_to(np.arange(100.0)[:, None], (100, 140)), atol=1e-9)
    # the pixel at the principal point looks straight ahead (x right, y down, z forward)
    rays = _cam(cx=70.0, cy=50.0).ray_grid()
    np.testing.assert_array_equal(rays[50, 70], [0.0, 0.0, 1.0])
    assert rays[50, 139, 0] > 0 and rays[99, 70, 1] > 0
    np.testing.assert_allclose(pts[0, 0, :2], np.array([-73.5 / 200, -48 / 180]) * depth[0, 0])
    # strided grid = every stride-th pixel; skew shifts x by -s * y / fx
    np.testing.assert_array_equal(cam.ray_grid(3), cam.ray_grid()[::3, ::3])
    skewed = PinholeCamera(140, 100, np.array([[200.0, 5.0, 73.5], [0, 180.0, 48.0], [0, 0, 1]]))
    np.testing.assert_allclose(skewed.project(skewed.unproject(depth))[7, 9], [9.0, 7.0], atol=1e-9)
    with pytest.raises(ValueError, match="depth is 70x50 but the camera is 140x100"):
        cam.unproject(depth[:50, :70])


def test_da3_convention_round_trip_and_centre():
    # DA3's camera decoder puts the principal point at (W/2, H/2) (pixel-corner origin): that is the
    # centre of the image, (W-1)/2, (H-1)/2 in pixel-centre coordinates
    w, h = 504, 280
    K_da3 = np.array([[400.0, 0.0, w / 2], [0.0, 410.0, h / 2], [0.0, 0.0, 1.0]])
    cam = PinholeCamera.from_da3_intrinsics(K_da3, w, h)
    assert (cam.cx, cam.cy) == ((w - 1) / 2, (h - 1) / 2) and (cam.fx, cam.fy) == (400.0, 410.0)
    np.testing.assert_array_equal(cam.to_da3_intrinsics(), K_da3)
    info = _cam()
    assert PinholeCamera.from_da3_intrinsics(info.to_da3_intrinsics(), 140, 100) == info
    # the depth-only fallback camera (no camera_info, no predicted K) is centred the same way
    fallback = PinholeCamera.centred(w, h, 60.0)
    assert (fallback.cx, fallback.cy) == ((w - 1) / 2, (h - 1) / 2)
    np.testing.assert_array_equal(fallback.to_da3_intrinsics()[:2, 2], [w / 2, h / 2])
    assert fallback.fx == pytest.approx(w / 2 / np.tan(np.radians(30.0)), rel=1e-12)


def test_resize_maps_pixels_like_cv2_resize():
    cam = _cam(fx=200.0, fy=200.0, cx=70.0, cy=50.0)  # a 140 x 100 image
    half = cam.resized(70, 50)
    assert (half.fx, half.fy, half.cx, half.cy) == (100.0, 100.0, 34.75, 24.75)
    # same scene at half resolution: a half-res pixel covers 2x2 full-res pixels and sees their mean ray
    full_rays, half_rays = cam.ray_grid(dtype=np.float64), half.ray_grid(dtype=np.float64)
    np.testing.assert_allclose(half_rays[10, 20], (full_rays[20, 40] + full_rays[21, 41]) / 2, atol=1e-12)
    # an image whose pixels store their own ray's x (and y): resizing it with cv2 gives, at each
    # resized pixel, the ray of the resized camera (linear in u: exact for INTER_LINEAR and for
    # INTER_AREA by integer factors; cv2's INTER_AREA by non-integer factors is not exactly an average)
    for size, interp in (((300, 170), cv2.INTER_LINEAR), ((56, 40), cv2.INTER_LINEAR), ((140, 37), cv2.INTER_LINEAR),
                         ((28, 20), cv2.INTER_AREA)):
        resized = cv2.resize(full_rays[..., :2].astype(np.float64), size, interpolation=interp)
        expect = cam.resized(*size).ray_grid(dtype=np.float64)[..., :2]
        inner = (slice(2, -2), slice(2, -2))  # cv2 clamps at the image border
        # cv2 interpolates with float32 weights (<= 4e-8 here); a half-pixel convention error is >= 1e-3
        np.testing.assert_allclose(resized[inner], expect[inner], rtol=0, atol=1e-6)
    assert half.resized(140, 100) == cam


def test_crop_maps_pixels_like_array_slicing():
    cam = _cam()
    crop = cam.cropped(12, 7, 50, 40)
    assert crop.size == (50, 40) and (crop.cx, crop.cy) == (61.5, 41.0)
    np.testing.assert_array_equal(crop.ray_grid(), cam.ray_grid()[7:47, 12:62])
    assert crop.cropped(-12, -7, 140, 100) == cam  # the inverse crop pads back
    # network mapping = resize then centre crop; a camera pixel and the network pixel it lands on
    # see the same ray (resize as image_to_network does, with INTER_LINEAR for exactness, then crop)
    m = NetworkInputMapping(640, 480, 154, 112)
    cam = PinholeCamera.from_focal(640, 480, 525.0, 526.0, 319.5, 239.5)
    net = m.camera_to_network(cam)
    rays_img = np.ascontiguousarray(cam.ray_grid(dtype=np.float64)[..., :2]).astype(np.float32)
    rays_img = np.concatenate([rays_img, np.zeros_like(rays_img[..., :1])], axis=-1)
    mapped = cv2.resize(rays_img, m.resized_size, interpolation=cv2.INTER_LINEAR)
    x0, y0 = m.crop_offset
    mapped = mapped[y0:y0 + 112, x0:x0 + 154, :2]
    expect = net.ray_grid(dtype=np.float64)[..., :2]
    # float32 image arithmetic in cv2.resize: ~1e-7 relative on rays <= 0.7
    np.testing.assert_allclose(mapped[2:-2, 2:-2], expect[2:-2, 2:-2], atol=1e-5)
    assert m.network_to_camera(net).K == pytest.approx(cam.K, abs=1e-12)
    with pytest.raises(ValueError, match="camera is 320x240, mapping expects 640x480"):
        m.camera_to_network(cam.resized(320, 240))


def test_mapping_matches_the_official_corner_convention():
    # DA3 rescales user intrinsics by pure multiplication and shifts them by the crop offset (corner
    # origin, DA3_MODEL_SPEC.md §8 step 6); converting there and back must equal resized().cropped()
    m = NetworkInputMapping(640, 480, 504, 280)
    cam = PinholeCamera.from_focal(640, 480, 500.0, 510.0, 320.0, 240.0)
    np.testing.assert_allclose(m.camera_to_network(cam).to_da3_intrinsics(), da3_network_intrinsics(cam, m),
                               atol=1e-12)


@pytest.mark.parametrize("K,message", [
    ([[1.2e39, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], r"out-of-range focal length fx=1\.2e\+39"),
    ([[500, 0, 319.5], [0, 7e8, 239.5], [0, 0, 1]], r"out-of-range focal length .*0\.001\.\.6\.4e\+08 px"),
    ([[500, 0, -7e8], [0, 500, 239.5], [0, 0, 1]], r"out-of-range principal point or skew cx=-7"),
    ([[500, 0, 319.5], [0, 500, 239.5], [0, 0, 2]], "not a pinhole matrix"),
    ([[0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], "non-positive focal length fx=0"),
    ([[-500, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], "non-positive focal length"),
    ([[1e-4, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], "out-of-range focal length"),
    ([[500, 0, float("nan")], [0, 500, 239.5], [0, 0, 1]], "K contains NaN/Inf"),
    ([[500, 0, 319.5], [0, float("inf"), 239.5], [0, 0, 1]], "K contains NaN/Inf"),
])
def test_validation_rejects_unusable_intrinsics(K, message):
    with pytest.raises(InvalidCameraError, match=message):
        PinholeCamera(640, 480, np.array(K, dtype=np.float64))


def test_validation_of_size_and_distortion_and_the_accepted_extremes():
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    for w, h in ((0, 480), (640, -1), (100_001, 480)):
        with pytest.raises(InvalidCameraError, match="image size"):
            PinholeCamera(w, h, K)
    with pytest.raises(InvalidCameraError, match="distortion D contains NaN"):
        PinholeCamera(640, 480, K, "plumb_bob", np.array([0.1, np.nan, 0, 0, 0]))
    with pytest.raises(InvalidCameraError, match="K must be 3x3"):
        PinholeCamera(640, 480, K[:2])
    # the largest accepted values stay finite in float32 all the way to points
    edge = PinholeCamera(640, 480, np.array([[1e-3, 0, -6.4e8], [0, 6.4e8, 6.4e8], [0, 0, 1]]))
    pts = edge.unproject(np.full((480, 640), 1e20, np.float32))
    assert np.isfinite(pts).all() and np.isfinite(edge.K.astype(np.float32)).all()
    # cameras are immutable values
    cam = PinholeCamera(640, 480, K)
    K[0, 0] = 1.0
    assert cam.fx == 500.0
    with pytest.raises(ValueError, match="read-only"):
        cam.K[0, 0] = 1.0


def test_default_hfov_has_one_home():
    """The no-camera_info guess is defined in geometry/camera.py only; everyone else imports it."""
    import ast
    from pathlib import Path

    import da3_ros
    from da3_ros.geometry.camera import DEFAULT_HFOV_DEG

    assert DEFAULT_HFOV_DEG == 60.0
    assert PinholeCamera.centred(640, 480) == PinholeCamera.centred(640, 480, DEFAULT_HFOV_DEG)
    root = Path(da3_ros.__file__).parent
    homes = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                   for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, (ast.Assign, ast.AnnAssign))
                   and any(isinstance(t, ast.Name) and t.id == "DEFAULT_HFOV_DEG"
                           for t in (node.targets if isinstance(node, ast.Assign) else [node.target])))
    assert homes == ["geometry/camera.py"]
