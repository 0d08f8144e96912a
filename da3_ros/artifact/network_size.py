"""The network input size that fits a camera, by the official DA3 rule (imports nothing but the standard library).

An exported graph runs at one fixed ``H x W``. The official package
(``depth_anything_3.utils.io.input_processor.InputProcessor``, default ``process_res=504``,
``process_res_method="upper_bound_resize"``) sizes the network input of a ``w x h`` image as:

1. boundary resize: the longest side becomes ``long_side``: ``scale = long_side / max(w, h)``,
   ``side' = max(1, round(side * scale))`` (Python's ``round``, ties to even; no change when the
   longest side already is ``long_side``);
2. each side to the nearest multiple of the patch size 14 (ties round up), at least 1.

So 640x480 -> 504x378 (W x H), 1280x720 -> 504x284 -> 504x280. :func:`network_size_for_camera`
is exactly that rule; ``da3-export onnx --camera-size WxH [--long-side L]`` uses it, and the node
can name the fitting export in a warning without importing torch.

:func:`crop_loss` is the fraction of a camera image that the node's cover-and-centre-crop mapping
(``da3_ros.pipeline.network_input.NetworkInputMapping.cropped_fraction``) throws away when the
camera's aspect ratio differs from the network's.
"""
from __future__ import annotations

import re
from typing import Tuple

__all__ = ["PATCH_SIZE", "DEFAULT_LONG_SIDE", "network_size_for_camera", "parse_camera_size", "crop_loss"]

PATCH_SIZE = 14
"""Side of one ViT patch (pixels); equals ``da3_ros.model.config.PATCH_SIZE`` (a test checks it)."""
DEFAULT_LONG_SIDE = 504
"""Official default ``process_res``: the network input's longest side."""


def _nearest_multiple(x: int, patch: int) -> int:
    """The official ``_make_divisible_by_resize`` rounding: nearest multiple, ties up, at least 1."""
    down = (x // patch) * patch
    up = down + patch
    return max(1, up if abs(up - x) <= abs(x - down) else down)


def network_size_for_camera(camera_width: int, camera_height: int,
                            long_side: int = DEFAULT_LONG_SIDE) -> Tuple[int, int]:
    """The network input ``(height, width)`` for a ``camera_width`` x ``camera_height`` camera.

    Args:
        camera_width: camera image width in pixels (> 0).
        camera_height: camera image height in pixels (> 0).
        long_side: the network's longest side before rounding to multiples of 14 (official
            ``process_res``; > 0).

    Returns:
        ``(height, width)``, both positive multiples of :data:`PATCH_SIZE`.

    Raises:
        ValueError: a size is not a positive integer, or the aspect ratio is so extreme that the
            official rule rounds a side below one patch.
    """
    w = _positive_int(camera_width, "camera width")
    h = _positive_int(camera_height, "camera height")
    target = _positive_int(long_side, "long side")
    if max(w, h) != target:   # the official boundary resize (skipped when already equal)
        scale = target / float(max(w, h))
        w, h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    net_w, net_h = _nearest_multiple(w, PATCH_SIZE), _nearest_multiple(h, PATCH_SIZE)
    if net_w % PATCH_SIZE or net_h % PATCH_SIZE:
        raise ValueError(f"camera {camera_width}x{camera_height} with long side {long_side} gives a network side "
                         f"below {PATCH_SIZE} px ({net_w}x{net_h}): raise the long side")
    return net_h, net_w


def parse_camera_size(text: str) -> Tuple[int, int]:
    """``"640x480"`` (also ``640X480``, ``640*480``) -> ``(640, 480)`` = (width, height).

    Args:
        text: the camera size as ``WxH``.

    Returns:
        ``(width, height)``.

    Raises:
        ValueError: not ``WxH`` with positive integers.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(text))
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise ValueError(f"camera size must be WIDTHxHEIGHT with positive integers, e.g. 640x480; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def crop_loss(camera_w: int, camera_h: int, net_w: int, net_h: int) -> float:
    """Fraction of the camera image that the cover-and-centre-crop mapping throws away.

    The same number as ``NetworkInputMapping(camera_w, camera_h, net_w, net_h).cropped_fraction``:
    the camera image is resized with its aspect kept so that it covers the network size
    (``s = max(net_w / camera_w, net_h / camera_h)``, sides ``max(net, round(camera * s))``), and the
    overflow is cropped; the loss is ``1 - net_w * net_h / (resized_w * resized_h)`` (0 when the
    aspect ratios match).

    Args:
        camera_w: camera width (pixels, > 0).
        camera_h: camera height (pixels, > 0).
        net_w: network input width (pixels, > 0).
        net_h: network input height (pixels, > 0).

    Returns:
        The lost fraction in ``[0, 1)``.
    """
    cw, ch = _positive_int(camera_w, "camera width"), _positive_int(camera_h, "camera height")
    nw, nh = _positive_int(net_w, "network width"), _positive_int(net_h, "network height")
    s = max(nw / cw, nh / ch)
    rw, rh = max(nw, int(round(cw * s))), max(nh, int(round(ch * s)))
    return 1.0 - (nw * nh) / float(rw * rh)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
