"""ImageNet normalisation used by every DA3 variant.

Images enter the network as float RGB in [0, 1], normalised per channel with
``(x - IMAGENET_MEAN) / IMAGENET_STD``. :func:`normalize_uint8_images` is the one uint8 rule: the
exported graph (da3_ros.export.export_wrapper), the torch backend and the benchmarks all call it.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """Normalise float RGB images in [0, 1], channels at dim -3: ``(..., 3, H, W)``."""
    if images.ndim < 3 or images.shape[-3] != 3:
        raise ValueError(f"expected images of shape (..., 3, H, W), got {tuple(images.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - mean) / std


def normalize_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB channels-last ``(B, N, H, W, 3)`` -> normalised float32 ``(B, N, 3, H, W)``.

    Cast before the channels-last -> channels-first transpose: TensorRT rejects a Transpose on UInt8,
    and this function is traced into the exported graph."""
    if images.ndim != 5 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (B, N, H, W, 3), got {tuple(images.shape)}")
    x = images.to(torch.float32).permute(0, 1, 4, 2, 3) / 255.0
    return normalize_images(x)
