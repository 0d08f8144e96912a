"""Reduced DA3 architectures with the released variants' structure but few, narrow blocks.

Used to exercise the whole export path (ONNX export, ONNX Runtime parity, TensorRT parse/build) in
seconds instead of minutes. ``reduced_model("multi_view")`` mirrors da3-small (alternating local /
global attention, camera token, RoPE, QK-norm, DualDPT head, camera encoder/decoder);
``reduced_model("mono")`` mirrors da3mono-large and ``reduced_model("metric")`` da3metric-large (DPT head
with sky output; the metric one's config says its depth is canonical metric). Random weights.
"""
from __future__ import annotations

from dataclasses import replace

REDUCED_KINDS = ("multi_view", "mono", "metric")


def reduced_config(kind: str = "multi_view"):
    from da3_ros.model import VARIANTS

    if kind == "multi_view":
        return replace(VARIANTS["da3-small"], name="da3-reduced", embed_dim=64, depth=6, num_heads=4,
                       ffn_hidden=128, out_layers=(2, 3, 4, 5), alt_start=2, qknorm_start=2, rope_start=2,
                       head_features=16, head_out_channels=(8, 16, 32, 64))
    if kind in ("mono", "metric"):
        return replace(VARIANTS[f"da3{kind}-large"], name=f"da3{kind}-reduced", embed_dim=64, depth=4, num_heads=4,
                       ffn_hidden=128, out_layers=(0, 1, 2, 3), head_features=16,
                       head_out_channels=(8, 16, 32, 64))
    raise ValueError(f"kind must be one of {REDUCED_KINDS}, got {kind!r}")


def reduced_model(kind: str = "multi_view", seed: int = 0):
    """A randomly initialised reduced model in eval mode (CPU, fp32)."""
    import torch

    from da3_ros.model import DA3Model

    torch.manual_seed(seed)
    model = DA3Model(reduced_config(kind)).eval()
    with torch.no_grad():  # non-trivial camera token / layer scales so every branch matters
        for name, p in model.named_parameters():
            if name.endswith("camera_token") or ".ls" in name or "gamma" in name:
                p.normal_(0.0, 0.5)
    return model
