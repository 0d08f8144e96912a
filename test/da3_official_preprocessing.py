"""The OFFICIAL DA3 input processing rule, as a test reference (not part of the da3_ros package).

The node feeds a fixed-size engine through :class:`da3_ros.pipeline.network_input.NetworkInputMapping`
(aspect kept, centre crop). Tests that compare with the official ``DepthAnything3.inference`` (e.g.
pose conditioning) need the official variable-size rule instead, which stretches to multiples of 14:

1. boundary resize: ``upper_bound_*`` -> longest side = ``process_res`` (default 504),
   ``lower_bound_*`` -> shortest side = ``process_res``; ``new = round(old * scale)``; OpenCV
   ``INTER_CUBIC`` when upscaling, ``INTER_AREA`` when downscaling; skipped if already equal;
2. multiples of 14: ``*_resize`` -> each side to the nearest multiple of 14 (ties round up) by a
   second resize (cubic if a side grows, else area); ``*_crop`` -> floor to a multiple of 14 by a
   centre crop (offset ``(old - new) // 2``).

Example: 1920x1080 (W x H) -> 504x284 -> 504x280. Intrinsics are in DA3's pixel-corner convention
(as the official API takes and returns them) and are mapped with the project's one camera model,
:class:`da3_ros.geometry.camera.PinholeCamera` (convert, resize/crop, convert back).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.model.config import DEFAULT_PROCESS_RES, PATCH_SIZE
from da3_ros.model.normalization import normalize_uint8_images

METHODS = ("upper_bound_resize", "upper_bound_crop", "lower_bound_resize", "lower_bound_crop")


def nearest_multiple(x: int, patch: int = PATCH_SIZE) -> int:
    """Nearest multiple of ``patch`` (ties round up), at least ``patch``."""
    down = (x // patch) * patch
    up = down + patch
    out = max(patch, up if abs(up - x) <= abs(x - down) else down)
    assert out % patch == 0, (x, patch, out)
    return out


@dataclass(frozen=True)
class ResizePlan:
    """How one camera image becomes the network input (all sizes ``(height, width)``)."""

    source_hw: tuple[int, int]
    boundary_hw: tuple[int, int]  # after the boundary resize
    network_hw: tuple[int, int]  # final network input (multiples of 14)
    method: str
    crop_tl: tuple[int, int] = (0, 0)  # (top, left) of the centre crop in the boundary image

    @property
    def scale(self) -> tuple[float, float]:
        """``(scale_y, scale_x)``: network pixels per camera pixel."""
        if self.method.endswith("crop"):
            return (self.boundary_hw[0] / self.source_hw[0], self.boundary_hw[1] / self.source_hw[1])
        return (self.network_hw[0] / self.source_hw[0], self.network_hw[1] / self.source_hw[1])

    @property
    def offset(self) -> tuple[float, float]:
        """``(offset_y, offset_x)`` in network pixels (minus the crop origin)."""
        return (-float(self.crop_tl[0]), -float(self.crop_tl[1]))


def plan_resize(source_hw: tuple[int, int], process_res: int = DEFAULT_PROCESS_RES,
                method: str = "upper_bound_resize") -> ResizePlan:
    """The official resize plan for an image of ``source_hw = (H, W)``."""
    if method not in METHODS:
        raise ValueError(f"unknown resize method {method!r}; expected one of {METHODS}")
    h, w = (int(v) for v in source_hw)
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {source_hw}")
    if process_res < PATCH_SIZE:
        raise ValueError(f"process_res must be at least {PATCH_SIZE}, got {process_res}")
    side = max(h, w) if method.startswith("upper") else min(h, w)
    if side == process_res:
        bh, bw = h, w
    else:
        s = process_res / float(side)
        bh, bw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if method.endswith("resize"):
        return ResizePlan((h, w), (bh, bw), (nearest_multiple(bh), nearest_multiple(bw)), method)
    nh, nw = (bh // PATCH_SIZE) * PATCH_SIZE, (bw // PATCH_SIZE) * PATCH_SIZE
    if nh == 0 or nw == 0:
        raise ValueError(f"{source_hw} is too small to crop to multiples of {PATCH_SIZE} at "
                         f"process_res={process_res}")
    return ResizePlan((h, w), (bh, bw), (nh, nw), method, ((bh - nh) // 2, (bw - nw) // 2))


def _cv_resize(img: np.ndarray, hw: tuple[int, int], upscale: bool) -> np.ndarray:
    return cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC if upscale else cv2.INTER_AREA)


def resize_image(image: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Apply ``plan`` to an ``(H, W, 3)`` uint8 RGB image -> ``network_hw`` uint8 RGB."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if tuple(image.shape[:2]) != plan.source_hw:
        raise ValueError(f"image is {image.shape[:2]} but the plan is for {plan.source_hw}")
    img = np.ascontiguousarray(image)
    if plan.boundary_hw != plan.source_hw:
        img = _cv_resize(img, plan.boundary_hw, plan.boundary_hw[0] > plan.source_hw[0]
                         or plan.boundary_hw[1] > plan.source_hw[1])
    if plan.method.endswith("resize"):
        if plan.network_hw != plan.boundary_hw:
            img = _cv_resize(img, plan.network_hw, plan.network_hw[0] > plan.boundary_hw[0]
                             or plan.network_hw[1] > plan.boundary_hw[1])
    else:
        top, left = plan.crop_tl
        img = img[top:top + plan.network_hw[0], left:left + plan.network_hw[1]]
    return np.ascontiguousarray(img)


def normalize_image(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W, 3)`` RGB -> float32 ``(3, H, W)`` ImageNet-normalised: the package's one rule
    (the official one, /255 then ImageNet mean/std; its constants are checked in
    test_official_preprocessing)."""
    return normalize_uint8_images(torch.from_numpy(np.ascontiguousarray(image))[None, None])[0, 0].numpy()


def preprocess_images(images: list[np.ndarray], process_res: int = DEFAULT_PROCESS_RES,
                      method: str = "upper_bound_resize") -> tuple[torch.Tensor, list[ResizePlan]]:
    """Same-size uint8 RGB images -> ``(1, N, 3, H, W)`` normalised float32 tensor + their plans."""
    if not images:
        raise ValueError("no images given")
    sizes = {tuple(im.shape[:2]) for im in images}
    if len(sizes) != 1:
        raise ValueError(f"all images of a window must have the same size, got {sorted(sizes)}")
    plan = plan_resize(images[0].shape[:2], process_res, method)
    batch = np.stack([normalize_image(resize_image(im, plan)) for im in images])
    return torch.from_numpy(batch)[None], [plan] * len(images)


def _camera_through_plan(camera: PinholeCamera, plan: ResizePlan) -> PinholeCamera:
    (bh, bw), (nh, nw) = plan.boundary_hw, plan.network_hw
    camera = camera.resized(bw, bh)
    if plan.method.endswith("crop"):
        return camera.cropped(plan.crop_tl[1], plan.crop_tl[0], nw, nh)
    return camera.resized(nw, nh)


def _per_view(intrinsics, fn):
    k = np.asarray(intrinsics, dtype=np.float64)
    if k.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must have shape (..., 3, 3), got {tuple(k.shape)}")
    return np.stack([fn(v) for v in k.reshape(-1, 3, 3)]).reshape(k.shape)


def intrinsics_to_network(intrinsics, plan: ResizePlan) -> np.ndarray:
    """Camera-image intrinsics ``(..., 3, 3)`` (DA3 convention) -> those of the network input."""
    h, w = plan.source_hw
    return _per_view(intrinsics, lambda k: _camera_through_plan(
        PinholeCamera.from_da3_intrinsics(k, w, h), plan).to_da3_intrinsics())


def intrinsics_to_camera(intrinsics, plan: ResizePlan) -> np.ndarray:
    """Network-input intrinsics ``(..., 3, 3)`` (DA3 convention) -> those of the camera image."""
    (h, w), (bh, bw), (nh, nw) = plan.source_hw, plan.boundary_hw, plan.network_hw

    def back(k):
        net = PinholeCamera.from_da3_intrinsics(k, nw, nh)
        if plan.method.endswith("crop"):
            boundary = net.cropped(-plan.crop_tl[1], -plan.crop_tl[0], bw, bh)
        else:
            boundary = net.resized(bw, bh)
        return boundary.resized(w, h).to_da3_intrinsics()
    return _per_view(intrinsics, back)


def da3_network_intrinsics(camera: PinholeCamera, mapping) -> np.ndarray:
    """DA3's own rule for a user camera through the network mapping (DA3_MODEL_SPEC.md section 8 step 6):
    the corner-convention K scaled by pure multiplication, then shifted by the crop offset. An independent
    reference for ``NetworkInputMapping.camera_to_network`` (which goes through the pixel-centre model)."""
    rw, rh = mapping.resized_size
    x0, y0 = mapping.crop_offset
    K = camera.to_da3_intrinsics()
    K[0] *= rw / camera.width
    K[1] *= rh / camera.height
    K[:2, 2] -= (x0, y0)
    return K
