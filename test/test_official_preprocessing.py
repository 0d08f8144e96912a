"""The official DA3 resize rule (test reference in test/da3_official_preprocessing.py) and its intrinsics.

(The inverse mapping of outputs to camera resolution is the pipeline's NetworkInputMapping.map_to_camera,
tested in test_camera_model_pipeline.py.)"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from da3_official_preprocessing import (intrinsics_to_camera, intrinsics_to_network, nearest_multiple,
                                        normalize_image, plan_resize, preprocess_images, resize_image)
from da3_ros.geometry.camera import PinholeCamera


@pytest.mark.parametrize("src,method,boundary,network,crop", [
    ((1080, 1920), "upper_bound_resize", (284, 504), (280, 504), (0, 0)),  # spec example
    ((1080, 1920), "upper_bound_crop", (284, 504), (280, 504), (2, 0)),
    ((480, 640), "upper_bound_resize", (378, 504), (378, 504), (0, 0)),
    ((480, 640), "lower_bound_resize", (504, 672), (504, 672), (0, 0)),
    ((576, 1024), "upper_bound_resize", (284, 504), (280, 504), (0, 0)),
    ((300, 200), "upper_bound_resize", (504, 336), (504, 336), (0, 0)),
    ((504, 377), "upper_bound_crop", (504, 377), (504, 364), (0, 6)),
    ((100, 250), "lower_bound_crop", (504, 1260), (504, 1260), (0, 0)),
    ((101, 99), "upper_bound_resize", (504, 494), (504, 490), (0, 0)),
])
def test_official_sizes(src, method, boundary, network, crop):
    plan = plan_resize(src, 504, method)
    assert (plan.boundary_hw, plan.network_hw, plan.crop_tl) == (boundary, network, crop)
    assert plan.network_hw[0] % 14 == 0 and plan.network_hw[1] % 14 == 0


def test_nearest_multiple_ties_round_up():
    assert [nearest_multiple(x) for x in (7, 20, 21, 22, 284, 287)] == [14, 14, 28, 28, 280, 294]


def test_image_pixels_follow_opencv_two_step_rule():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    plan = plan_resize(img.shape[:2])
    ref = cv2.resize(cv2.resize(img, (504, 284), interpolation=cv2.INTER_AREA), (504, 280),
                     interpolation=cv2.INTER_AREA)
    assert np.array_equal(resize_image(img, plan), ref)
    small = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)  # upscaling -> cubic
    ref = cv2.resize(small, (336, 504), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(resize_image(small, plan_resize(small.shape[:2])), ref)
    crop_plan = plan_resize((504, 377), method="upper_bound_crop")
    im = rng.integers(0, 256, (504, 377, 3), dtype=np.uint8)
    assert np.array_equal(resize_image(im, crop_plan), im[:, 6:370])


def test_normalisation_and_batch():
    img = np.zeros((28, 42, 3), dtype=np.uint8)
    img[..., 0] = 255
    x = normalize_image(img)
    assert x.shape == (3, 28, 42) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    batch, plans = preprocess_images([img, img], process_res=42)
    assert batch.shape == (1, 2, 3, 28, 42) and len(plans) == 2
    with pytest.raises(ValueError, match="same size"):
        preprocess_images([img, img[:14]])
    with pytest.raises(ValueError, match="unknown resize method"):
        plan_resize((10, 10), method="fit")
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB image"):
        resize_image(img[..., 0], plans[0])


@pytest.mark.parametrize("method", ["upper_bound_resize", "upper_bound_crop"])
def test_intrinsics_roundtrip_and_ray_consistency(method):
    plan = plan_resize((1080, 1920), 504, method)
    k = np.array([[1400.0, 0, 955.0], [0, 1380.0, 545.0], [0, 0, 1]])
    kn = intrinsics_to_network(k, plan)
    sy, sx = plan.scale
    assert np.isclose(kn[0, 0], 1400 * sx) and np.isclose(kn[1, 1], 1380 * sy)
    assert np.isclose(kn[1, 2], 545 * sy - plan.crop_tl[0])
    assert np.allclose(intrinsics_to_camera(kn, plan), k)
    # a camera pixel and the network point it maps to see the same ray
    cam_rays = PinholeCamera.from_da3_intrinsics(k, 1920, 1080).ray_grid(dtype=np.float64)
    u, v = 960, 540
    xn, yn = (u + 0.5) * sx + plan.offset[1], (v + 0.5) * sy + plan.offset[0]  # corner coordinates
    ray = np.linalg.inv(kn) @ np.array([xn, yn, 1.0])
    assert np.allclose(ray, cam_rays[v, u])
    assert intrinsics_to_network(np.stack([k, k]), plan).shape == (2, 3, 3)
