"""Camera pose and intrinsics from a DA3 ray map (host-side, vectorised, NumPy float64).

Ray map convention (DA3 DualDPT aux output, ``(..., h, w, 6)``): channels 0:3 are the direction
of the ray through the pixel centre (world frame, any positive scale), channels 3:6 the ray
origin = camera centre (world frame). Pixel ``(i, j)`` sits at normalised image coordinates
``x = -1 + (2j + 1)/w``, ``y = -1 + (2i + 1)/h`` (the image spans [-1, 1] on both axes).

Model: ``d ~ R_c2w K_n^-1 [x, y, 1]^T`` with ``K_n = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in
normalised units. Hence the 3x3 map ``H = R K_n^-1`` (up to scale) takes normalised pixels to ray
directions, and because ``K_n^-1`` is **upper** triangular, the QR decomposition of ``H`` (with a
positive diagonal) returns exactly ``R`` and ``K_n^-1`` -- also for an off-centre principal point.
(The official solver uses a QL decomposition, which is exact only for a centred principal point;
see spec section 10.5.)

Algorithm, all views at once: ``H`` minimises ``sum_m w_m |d_m/|d_m| x H p_m|^2`` (a weighted DLT on
unit directions, no division by d_z) via the smallest eigenvector of a 9x9 moment matrix; a few
iteratively reweighted passes with Cauchy weights on the angular residual (scale ``0.05`` rad)
down-weight outliers instead of RANSAC; then the QR split, and the camera centre is the
weighted mean of the ray origins. On exact ray maps the result is exact to float64 round-off.
"""

from __future__ import annotations

import numpy as np
import torch

ROBUST_SCALE = 0.05
IRLS_ITERATIONS = 2
MAX_FIT_POINTS = 10_000
"""The homography is fitted on a regular pixel subgrid of at most this many points per view
(every k-th row and column); the camera centre uses every pixel."""
EXACT_FIT_SIN2 = 1e-12
"""Stop reweighting once the weighted mean squared sine residual is below this (exact maps)."""


def _normalised_grid(h: int, w: int) -> np.ndarray:
    """Homogeneous normalised pixel-centre coordinates ``(h*w, 3)``, row-major."""
    x = -1 + (2 * np.arange(w, dtype=np.float64) + 1) / w
    y = -1 + (2 * np.arange(h, dtype=np.float64) + 1) / h
    xx, yy = np.meshgrid(x, y, indexing="xy")
    return np.stack((xx.ravel(), yy.ravel(), np.ones(h * w)), axis=-1)


def _fit_homography(p: np.ndarray, d: np.ndarray, w: np.ndarray,
                    inv_n2: np.ndarray) -> np.ndarray:
    """Minimiser ``H`` (V,3,3) of ``sum_m w_m |d_m/|d_m| x H p_m|^2`` (smallest eigenvector).

    With ``h = vec(H)`` (row-major) the cost is ``h^T A h`` with
    ``A = (sum_m w_m p_m p_m^T) (x) I  -  X^T X``, ``X_m = sqrt(w_m)/|d_m| (d_m (x) p_m)`` (9 values).
    """
    v = w.shape[0]
    sp = np.matmul((p[None] * w[..., None]).transpose(0, 2, 1), p)  # (V,3,3): sum w p p^T
    ds = d * np.sqrt(w * inv_n2)[..., None]
    x = (ds[:, :, :, None] * p[None, :, None, :]).reshape(v, -1, 9)
    a = np.zeros((v, 3, 3, 3, 3))
    for k in range(3):
        a[:, k, :, k, :] = sp
    a = a.reshape(v, 9, 9) - np.matmul(x.transpose(0, 2, 1), x)
    _, vecs = np.linalg.eigh(a)
    return vecs[..., 0].reshape(-1, 3, 3)


def solve_pose_from_rays(ray, ray_conf, image_hw: tuple[int, int]):
    """Ray map ``(..., h, w, 6)`` (+ confidence ``(..., h, w)``) -> pose and intrinsics.

    Returns world->camera extrinsics ``(..., 3, 4)`` and intrinsics ``(..., 3, 3)`` in pixels of an
    ``image_hw = (H, W)`` image (the network input the ray map was predicted for). Accepts torch
    tensors (returned in the ray's dtype/device) or NumPy arrays (float64 out). Confidence weights
    the fit (``None`` = uniform); non-finite rays get weight 0. Runs in NumPy float64 (single
    threaded elementwise work, so it stays fast on a busy CPU).
    """
    as_torch = isinstance(ray, torch.Tensor)
    r_in = ray.detach().cpu().numpy() if as_torch else np.asarray(ray)
    if r_in.ndim < 3 or r_in.shape[-1] != 6:
        raise ValueError(f"ray map must have shape (..., h, w, 6), got {tuple(r_in.shape)}")
    lead, (h, w) = r_in.shape[:-3], r_in.shape[-3:-1]
    if ray_conf is not None:
        c_in = ray_conf.detach().cpu().numpy() if isinstance(ray_conf, torch.Tensor) \
            else np.asarray(ray_conf)
        if tuple(c_in.shape) != tuple(r_in.shape[:-1]):
            raise ValueError(f"ray_conf must have shape {tuple(r_in.shape[:-1])}, got "
                             f"{tuple(c_in.shape)}")
        conf = c_in.reshape(-1, h * w).astype(np.float64)
    else:
        conf = np.ones((int(np.prod(lead, dtype=np.int64)), h * w))
    r = r_in.reshape(-1, h * w, 6)
    if not np.isfinite(r.sum(dtype=np.float64) + conf.sum()):  # rare: mask non-finite entries
        finite = np.isfinite(r).all(axis=-1) & np.isfinite(conf)
        r = np.where(finite[..., None], r, 0.0)
        conf = np.where(finite, conf, 0.0)
    conf = np.maximum(conf, 0.0)
    centre = (np.einsum("vm,vmc->vc", conf, r[..., 3:], dtype=np.float64)
              / np.maximum(conf.sum(1), 1e-12)[:, None])

    stride = 1
    while (h // stride) * (w // stride) > MAX_FIT_POINTS:
        stride += 1
    rows = np.arange(stride // 2, h, stride)
    cols = np.arange(stride // 2, w, stride)
    keep = (rows[:, None] * w + cols[None, :]).ravel()
    p = _normalised_grid(h, w)[keep]
    d = r[:, keep, :3].astype(np.float64)
    n2 = np.einsum("vmc,vmc->vm", d, d)
    base_w = np.where(n2 > 1e-24, conf[:, keep], 0.0)
    inv_n2 = 1.0 / np.maximum(n2, 1e-24)

    weights = base_w
    hom = _fit_homography(p, d, weights, inv_n2)
    for _ in range(IRLS_ITERATIONS):
        v = np.matmul(p[None], hom.transpose(0, 2, 1))  # (V, M, 3) = H p
        dv = np.einsum("vmc,vmc->vm", d, v)
        cos2 = dv * dv * inv_n2 / np.maximum(np.einsum("vmc,vmc->vm", v, v), 1e-24)
        sin2 = np.maximum(1 - cos2, 0.0)
        if (sin2 * base_w).sum() / max(base_w.sum(), 1e-30) < EXACT_FIT_SIN2:
            break
        weights = base_w / (1 + sin2 / ROBUST_SCALE ** 2)
        hom = _fit_homography(p, d, weights, inv_n2)

    hom = np.where(np.linalg.det(hom)[:, None, None] < 0, -hom, hom)
    q, u = np.linalg.qr(hom)
    sign = np.sign(np.diagonal(u, axis1=-2, axis2=-1))
    sign = np.where(sign == 0, 1.0, sign)
    rot = q * sign[:, None, :]
    u = sign[:, :, None] * u
    u = u / u[:, 2:3, 2:3]
    fx_n, fy_n = 1 / u[:, 0, 0], 1 / u[:, 1, 1]
    cx_n, cy_n = -u[:, 0, 2] * fx_n, -u[:, 1, 2] * fy_n

    rt = rot.transpose(0, 2, 1)
    extr = np.concatenate((rt, -(rt @ centre[..., None])), axis=-1)
    big_h, big_w = image_hw
    intr = np.zeros((len(fx_n), 3, 3))
    intr[:, 0, 0], intr[:, 0, 2] = fx_n * big_w / 2, (cx_n + 1) * big_w / 2
    intr[:, 1, 1], intr[:, 1, 2] = fy_n * big_h / 2, (cy_n + 1) * big_h / 2
    intr[:, 2, 2] = 1.0
    extr, intr = extr.reshape(lead + (3, 4)), intr.reshape(lead + (3, 3))
    if as_torch:
        return (torch.from_numpy(extr).to(ray.dtype).to(ray.device),
                torch.from_numpy(intr).to(ray.dtype).to(ray.device))
    return extr, intr


def rays_from_camera(extrinsics: torch.Tensor, intrinsics: torch.Tensor, image_hw: tuple[int, int],
                     map_hw: tuple[int, int]) -> torch.Tensor:
    """Exact ray map ``(..., h, w, 6)`` of a camera (the inverse of :func:`solve_pose_from_rays`).

    ``extrinsics`` world->camera ``(..., 3|4, 4)``, ``intrinsics`` in pixels of ``image_hw``;
    directions ``R_c2w K_n^-1 [x, y, 1]`` (unnormalised), origins = camera centre.
    """
    big_h, big_w = image_hw
    h, w = map_hw
    k = intrinsics.to(torch.float64)
    kn = torch.zeros_like(k)
    kn[..., 0, 0] = k[..., 0, 0] * 2 / big_w
    kn[..., 1, 1] = k[..., 1, 1] * 2 / big_h
    kn[..., 0, 2] = k[..., 0, 2] * 2 / big_w - 1
    kn[..., 1, 2] = k[..., 1, 2] * 2 / big_h - 1
    kn[..., 0, 1] = k[..., 0, 1] * 2 / big_w
    kn[..., 2, 2] = 1
    e = extrinsics.to(torch.float64)
    rot_c2w = e[..., :3, :3].transpose(-1, -2)
    centre = -(rot_c2w @ e[..., :3, 3:])[..., 0]
    p = torch.from_numpy(_normalised_grid(h, w)).to(e.device)
    dirs = torch.einsum("...ab,...bc,mc->...ma", rot_c2w, torch.linalg.inv(kn), p)
    origins = centre[..., None, :].expand(dirs.shape)
    out = torch.cat((dirs, origins), dim=-1)
    return out.reshape(e.shape[:-2] + (h, w, 6)).to(extrinsics.dtype)
