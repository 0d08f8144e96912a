"""Depth unprojection and intrinsics scaling (OpenCV optical frame, corner-origin pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from da3_ros.geometry.camera import depth_to_points, pixel_rays, scale_intrinsics
from da3_ros.model.metric import canonical_to_metric_depth  # noqa: F401  (import check)


def _k(fx=200.0, fy=180.0, cx=70.0, cy=50.0):
    return torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float64)


def test_unprojected_points_project_back_to_pixel_centres():
    h, w = 100, 140
    k = _k(cx=73.5, cy=48.0)
    depth = 1 + torch.rand(h, w, dtype=torch.float64)
    pts = depth_to_points(depth, k)
    assert pts.shape == (h, w, 3) and torch.allclose(pts[..., 2], depth)
    uvw = pts @ k.T
    u, v = uvw[..., 0] / uvw[..., 2], uvw[..., 1] / uvw[..., 2]
    assert torch.allclose(u, (torch.arange(w, dtype=torch.float64) + 0.5).expand(h, w))
    assert torch.allclose(v, (torch.arange(h, dtype=torch.float64) + 0.5)[:, None].expand(h, w))
    # the pixel at the principal point looks straight ahead (x right, y down, z forward)
    rays = pixel_rays(_k(cx=70.5, cy=50.5), h, w)
    assert torch.allclose(rays[50, 70], torch.tensor([0.0, 0, 1], dtype=torch.float64))
    assert rays[50, 139, 0] > 0 and rays[99, 70, 1] > 0
    official_style = depth_to_points(depth, k, pixel_center=0.0)
    assert torch.allclose(official_style[0, 0, :2], torch.tensor([-73.5 / 200, -48 / 180],
                                                                  dtype=torch.float64) * depth[0, 0])


def test_world_points_with_extrinsics_and_batches():
    from da3_ros.geometry.quaternion import quaternion_to_rotation_matrix
    g = torch.Generator().manual_seed(0)
    n, h, w = 3, 20, 30
    w2c = torch.zeros(1, n, 3, 4, dtype=torch.float64)
    w2c[..., :3] = quaternion_to_rotation_matrix(torch.randn(1, n, 4, generator=g, dtype=torch.float64))
    w2c[..., 3] = torch.randn(1, n, 3, generator=g, dtype=torch.float64)
    k = _k(20, 20, 15, 10).expand(1, n, 3, 3)
    depth = 1 + torch.rand(1, n, h, w, generator=g, dtype=torch.float64)
    cam = depth_to_points(depth, k)
    world = depth_to_points(depth, k, w2c)
    back = torch.einsum("bnij,bnhwj->bnhwi", w2c[..., :3], world) + w2c[..., None, None, :, 3]
    assert torch.allclose(back, cam)
    with pytest.raises(ValueError, match="extrinsics must have shape"):
        depth_to_points(depth, k, w2c[:, :2])
    with pytest.raises(ValueError, match="does not match depth"):
        depth_to_points(depth, k[:, :2])


def test_any_resolution_via_scaled_intrinsics_and_numpy():
    k = _k(200, 200, 70, 50)  # for a 100 x 140 image
    k2 = scale_intrinsics(k, (100, 140), (50, 70))
    assert torch.allclose(k2, _k(100, 100, 35, 25))
    # same scene at half resolution: a pixel's ray hits the same point
    full = pixel_rays(k, 100, 140)
    half = pixel_rays(k2, 50, 70)
    assert torch.allclose(half[10, 20], (full[20, 40] + full[21, 41]) / 2)
    pts = depth_to_points(np.ones((50, 70)), k2.numpy())
    assert isinstance(pts, np.ndarray) and pts.shape == (50, 70, 3)
    assert isinstance(scale_intrinsics(k.numpy(), (100, 140), (50, 70)), np.ndarray)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        scale_intrinsics(torch.eye(4), (1, 1), (2, 2))
