"""Metric depth: canonical -> metric conversion, sky filling, nested-model scale alignment.

Host-side post-processing (data-dependent: masks, quantiles); not part of any exported graph.
Depth maps ``(B, N, H, W)``; intrinsics ``(B, N, 3, 3)`` in pixels of the network input.
"""

from __future__ import annotations

import torch

CANONICAL_FOCAL = 300.0
"""The metric variant predicts depth for a canonical focal length of 300 px."""
SKY_THRESHOLD = 0.3
"""``sky < 0.3`` is "non-sky" in the official post-processing."""
MAX_QUANTILE_SAMPLES = 100_000


def canonical_to_metric_depth(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Metres from da3metric-large output: ``depth * ((fx + fy) / 2) / 300`` per view.

    ``intrinsics`` must refer to the network-input image the depth was predicted for.
    """
    if intrinsics.shape[-2:] != (3, 3) or intrinsics.shape[:-2] != depth.shape[:-2]:
        raise ValueError(f"intrinsics {tuple(intrinsics.shape)} do not match depth "
                         f"{tuple(depth.shape)} (expected {tuple(depth.shape[:-2]) + (3, 3)})")
    focal = (intrinsics[..., 0, 0] + intrinsics[..., 1, 1]) / 2
    return depth * (focal[..., None, None] / CANONICAL_FOCAL)


def _quantile(values: torch.Tensor, q: float, generator: torch.Generator | None) -> torch.Tensor:
    if values.numel() > MAX_QUANTILE_SAMPLES:
        idx = torch.randint(0, values.numel(), (MAX_QUANTILE_SAMPLES,), generator=generator,
                            device=values.device)
        values = values[idx]
    return torch.quantile(values, q)


def fill_sky_depth(depth: torch.Tensor, sky: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Official mono/metric post-processing: sky pixels get the 0.99-quantile of non-sky depth.

    Applied over the whole batch at once, only when more than 10 pixels are sky and more than 10
    are not (otherwise ``depth`` is returned unchanged). Above 100k non-sky pixels the quantile is
    estimated from 100k random samples (seed it with ``generator``). Returns a new tensor.
    """
    non_sky = sky < SKY_THRESHOLD
    if int(non_sky.sum()) <= 10 or int((~non_sky).sum()) <= 10:
        return depth
    far = _quantile(depth[non_sky], 0.99, generator)
    return torch.where(non_sky, depth, far.to(depth.dtype))


def align_to_metric(depth: torch.Tensor, depth_conf: torch.Tensor, extrinsics: torch.Tensor,
                    intrinsics: torch.Tensor, metric_depth: torch.Tensor, sky: torch.Tensor,
                    sky_depth: float = 200.0, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Nested-variant alignment of any-view outputs to the metric network (spec section 5.4).

    Returns ``(depth, depth_conf, extrinsics, scale)``: depth and translations multiplied by the
    least-squares scale ``s`` (``metric ~ s * depth`` over confident non-sky pixels), sky pixels set
    to ``min(q99(non-sky depth), sky_depth)`` with confidence 1.
    """
    metric = canonical_to_metric_depth(metric_depth, intrinsics)
    non_sky = sky < SKY_THRESHOLD
    if int(non_sky.sum()) <= 10:
        raise ValueError("metric alignment needs more than 10 non-sky pixels")
    median_conf = _quantile(depth_conf[non_sky], 0.5, generator)
    mask = (depth_conf >= median_conf) & non_sky & (metric > 1e-2) & (depth > 1e-3)
    a, b = metric[mask], depth[mask]
    scale = torch.dot(a, b) / torch.dot(b, b).clamp_min(1e-12)
    depth = depth * scale
    extrinsics = torch.cat((extrinsics[..., :3], extrinsics[..., 3:] * scale), dim=-1)
    far = min(float(_quantile(depth[non_sky], 0.99, generator)), sky_depth)
    depth = torch.where(non_sky, depth, torch.full_like(depth, far))
    depth_conf = torch.where(non_sky, depth_conf, torch.ones_like(depth_conf))
    return depth, depth_conf, extrinsics, float(scale)
