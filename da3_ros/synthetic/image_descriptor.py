"""The oracle's place-recognition descriptor: a deterministic function of a view's pixels.

The network's descriptor (:mod:`da3_ros.model.backbone`, ``return_descriptor``) mean-pools patch tokens, so it
barely depends on where in the image a patch is: a mirror image of a place pools to nearly the same vector.
The oracle has no network; :func:`appearance_descriptor` stands in for it with the same two properties that
matter to loop closure: the same place seen again gives a similar descriptor (a small, blurred thumbnail), and
a mirrored look-alike of a place gives the SAME descriptor (the thumbnail is symmetrised left-right), so place
recognition proposes it and only geometric verification can reject it.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["DESCRIPTOR_GRID", "appearance_descriptor"]

#: thumbnail (width, height) the descriptor is made of; D = (width // 2) * height * 3
DESCRIPTOR_GRID = (16, 12)


def appearance_descriptor(rgb: np.ndarray, grid: tuple = DESCRIPTOR_GRID) -> np.ndarray:
    """(D,) float32 unit vector of an RGB uint8 ``(H, W, 3)`` image (see the module docstring).

    The image is area-downsampled to ``grid``, made left-right symmetric (mean with its mirror, the left half
    kept), each channel's mean removed (brightness does not matter) and the result L2-normalised.
    """
    image = np.asarray(rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"appearance_descriptor needs an (H, W, 3) image, got shape {image.shape}")
    width, height = int(grid[0]), int(grid[1])
    if width < 2 or width % 2 or height < 1:
        raise ValueError(f"grid must be (even width >= 2, height >= 1), got {grid}")
    thumb = cv2.resize(image.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    symmetric = 0.5 * (thumb + thumb[:, ::-1])[:, : width // 2]
    symmetric = symmetric - symmetric.reshape(-1, 3).mean(axis=0)
    vector = symmetric.reshape(-1).astype(np.float64)
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        vector = np.zeros_like(vector)
        vector[0] = 1.0   # a uniform image: any fixed unit vector
        return vector.astype(np.float32)
    return (vector / norm).astype(np.float32)
