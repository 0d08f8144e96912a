"""Test helper: the official Depth Anything 3 network (reference implementation) with random weights.

Used by the parity tests and benchmarks as the numeric reference; never by the product code.

* ``make_official_model(variant, seed=0)`` -> the official ``DepthAnything3Net`` (eval, fp32, CPU),
  built from the package's own config, weights drawn with ``torch.manual_seed(seed)``.
  Giant/nested need the optional ``evo`` package (GS adapter import); they are not built here.
* ``save_hf_checkpoint(official_model, directory, variant)`` writes the released Hugging Face layout:
  ``config.json`` = ``{"model_name": variant}`` and ``model.safetensors`` with keys ``model.<...>``
  written by ``safetensors.torch.save_model`` as huggingface_hub does (tied tensors stored once:
  437 keys for da3-small). ``dedupe=False`` writes every name (443 keys).
* ``official_forward(official_model, images, **kw)`` runs it under ``torch.inference_mode``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

OFFICIAL_BUILDABLE = ("da3-small", "da3-base", "da3-large", "da3metric-large", "da3mono-large")


def make_official_model(variant: str, seed: int = 0) -> nn.Module:
    """The official network for ``variant`` with random weights (deterministic per seed)."""
    if variant not in OFFICIAL_BUILDABLE:
        raise ValueError(f"official {variant!r} is not built by tests (needs evo / too large); "
                         f"buildable: {OFFICIAL_BUILDABLE}")
    from depth_anything_3.cfg import create_object, load_config
    from depth_anything_3.registry import MODEL_REGISTRY

    torch.manual_seed(seed)
    net = create_object(load_config(MODEL_REGISTRY[variant]))
    # LayerScale / LayerNorm start at constants; randomise every parameter so that a wrong
    # mapping or a skipped layer shows up in the outputs.
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("ls1.gamma") or name.endswith("ls2.gamma"):
                p.uniform_(0.05, 0.3)
            elif "norm" in name and name.endswith("weight") and p.ndim == 1:
                p.uniform_(0.7, 1.3)
            elif "norm" in name and name.endswith("bias") and p.ndim == 1:
                p.normal_(0.0, 0.05)
    return net.eval()


def save_hf_checkpoint(official_model: nn.Module, directory: str | Path, variant: str,
                       dedupe: bool = True) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; return the directory."""
    from da3_ros.model import save_checkpoint

    return save_checkpoint(official_model, directory, variant, dedupe=dedupe)


def official_forward(official_model: nn.Module, images: torch.Tensor, **kwargs) -> dict:
    """Official forward (inference mode, fp32); returns a plain dict of tensors."""
    with torch.inference_mode():
        out = official_model(images, **kwargs)
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}


def max_rel_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape, f"compared tensors differ in shape: {tuple(ours.shape)} vs {tuple(ref.shape)}"
    """``max|ours - ref| / max|ref|`` (the parity metric used throughout the tests)."""
    ours, ref = ours.double(), ref.double()
    if ours.shape != ref.shape:
        raise AssertionError(f"shape mismatch: ours {tuple(ours.shape)} vs ref {tuple(ref.shape)}")
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
