"""Loading DA3 weights with strict key checking.

Accepted sources (``load_model(checkpoint, variant=None)``):

* a local Hugging Face layout directory: ``config.json`` (``{"model_name": "<variant>"}``) +
  ``model.safetensors`` with keys ``model.<...>`` exactly as released;
* a single ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file (``variant`` required unless a
  ``config.json`` lies beside it); keys with or without the ``model.`` prefix;
* a Hugging Face repo id such as ``depth-anything/DA3-SMALL`` (downloaded through
  ``huggingface_hub`` when a network exists; offline it fails fast with instructions).

Released files are written by huggingface_hub (safetensors ``save_model``), which stores tied
tensors once: the ray-neck LayerNorm shared by ``head.scratch.output_conv2_aux.{0..3}.2`` appears
only as ``...aux.0.2.*`` (437 instead of 443 keys for da3-small). Names that refer to one shared
parameter in the model are treated as one; every other missing or unexpected key is an error that
names the keys.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .config import HF_REPOS, VARIANTS
from .network import DA3Model, NestedDA3Model, build_model

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
KEY_PREFIX = "model."


class CheckpointError(ValueError):
    """A checkpoint cannot be found, read, or does not match the model's parameter names/shapes."""


def _format_keys(keys: list[str], limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read all tensors of a ``.safetensors`` or torch pickle file (weights only), on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path), device="cpu")
    if path.suffix in (".pth", ".pt", ".bin"):
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model_state_dict"):
            if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path} does not hold a flat state dict of tensors")
        return obj
    raise CheckpointError(f"unsupported checkpoint file type {path.suffix!r} ({path}); expected "
                          f"one of {CHECKPOINT_SUFFIXES}")


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the released ``model.`` prefix when every key carries it."""
    if state and all(k.startswith(KEY_PREFIX) for k in state):
        return {k[len(KEY_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def tied_parameter_groups(model: nn.Module) -> list[list[str]]:
    """Groups (size >= 2) of state-dict names that refer to one shared tensor in ``model``."""
    groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strictly match ``state`` (unprefixed names) to ``model``; return a complete state dict.

    Tied names missing from ``state`` are filled from a present member of their group. Raises
    :class:`CheckpointError` listing missing keys, unexpected keys and shape mismatches.
    """
    state = dict(state)
    for group in tied_parameter_groups(model):
        present = [k for k in group if k in state]
        if not present:
            continue
        first = state[present[0]]
        for k in present[1:]:
            if state[k].shape != first.shape or not torch.equal(state[k], first):
                raise CheckpointError(f"tied parameters {present[0]} and {k} differ in the checkpoint")
        for k in group:
            state.setdefault(k, first)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_format_keys(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_format_keys(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {_format_keys(wrong)}")
    if problems:
        name = getattr(model, "variant", type(model).__name__)
        raise CheckpointError(f"checkpoint does not match {name}: " + "; ".join(problems))
    return state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Strictly load a (prefixed or unprefixed) state dict into ``model``."""
    full = check_state_dict(model, strip_prefix(state))
    model.load_state_dict(full, strict=True)
    return model


def _looks_like_repo_id(s: str) -> bool:
    parts = s.split("/")
    return (len(parts) == 2 and all(parts) and not s.startswith((".", "/", "~"))
            and not s.endswith(CHECKPOINT_SUFFIXES))


def _download_instructions(repo_id: str) -> str:
    name = repo_id.split("/")[-1]
    return (f"download it on a machine with internet access, e.g. `hf download {repo_id} "
            f"--local-dir ./checkpoints/{name}` (or `huggingface-cli download ...`), copy the "
            f"directory here and point the node's `model_file_path` (or `--checkpoint`) at "
            f"./checkpoints/{name}")


def resolve_repo_id(repo_id: str, timeout_s: float = 3.0) -> Path:
    """Local directory holding ``config.json`` + ``model.safetensors`` of a HF repo.

    Uses the local hub cache if it has the files; otherwise downloads them. Without network
    (or with ``HF_HUB_OFFLINE=1``) it fails within ``timeout_s`` with download instructions.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointError(f"huggingface_hub is needed to fetch {repo_id}: {exc}") from exc
    patterns = ["config.json", "model.safetensors"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        raise CheckpointError(f"{repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                              f"is set; {_download_instructions(repo_id)}")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise CheckpointError(f"cannot reach {host} to download {repo_id} ({exc}); "
                              f"{_download_instructions(repo_id)}") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=timeout_s))
    except Exception as exc:
        raise CheckpointError(f"downloading {repo_id} failed ({type(exc).__name__}: {exc}); "
                              f"{_download_instructions(repo_id)}") from None


def read_variant(directory: Path) -> str:
    """Variant name from ``config.json`` (``{"model_name": ...}``) in ``directory``."""
    cfg_path = directory / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {cfg_path}: {exc}") from None
    name = cfg.get("model_name") if isinstance(cfg, dict) else None
    if name not in VARIANTS:
        raise CheckpointError(f"{cfg_path}: model_name {name!r} is not a known variant "
                              f"({', '.join(VARIANTS)})")
    return name


def resolve_checkpoint(checkpoint: str | Path, variant: str | None = None) -> tuple[Path, str]:
    """Map any accepted checkpoint source to ``(weights file, variant)``."""
    path = Path(checkpoint).expanduser()
    if not path.exists() and isinstance(checkpoint, str) and _looks_like_repo_id(checkpoint):
        path = resolve_repo_id(checkpoint)
    if path.is_dir():
        weights = path / "model.safetensors"
        if not weights.is_file():
            found = [p.name for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES]
            raise CheckpointError(f"{path} has no model.safetensors (found: {found or 'nothing'})")
        dir_variant = read_variant(path) if (path / "config.json").is_file() else None
    elif path.is_file():
        weights = path
        dir_variant = read_variant(path.parent) if (path.parent / "config.json").is_file() else None
    else:
        raise CheckpointError(
            f"checkpoint {str(checkpoint)!r} is neither an existing file/directory nor a Hugging "
            f"Face repo id (known repos: {', '.join(HF_REPOS.values())})")
    if variant is not None and variant not in VARIANTS:
        raise CheckpointError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if variant is not None and dir_variant is not None and variant != dir_variant:
        raise CheckpointError(f"variant {variant!r} was requested but {weights.parent}/config.json "
                              f"says {dir_variant!r}")
    chosen = variant or dir_variant
    if chosen is None:
        raise CheckpointError(f"{weights} has no config.json beside it; pass the variant "
                              f"(one of {', '.join(VARIANTS)})")
    return weights, chosen


def load_model(checkpoint: str | Path, variant: str | None = None,
               device: str | torch.device = "cpu") -> DA3Model | NestedDA3Model:
    """Build the variant and load ``checkpoint`` strictly; returns the model in eval mode."""
    weights, name = resolve_checkpoint(checkpoint, variant)
    state = read_state_dict(weights)
    with torch.device("meta"):
        model = build_model(name, device="meta")
    full = check_state_dict(model, strip_prefix(state))
    model.load_state_dict(full, strict=True, assign=True)
    for module in model.modules():
        if hasattr(module, "reset_tables"):
            module.reset_tables()
    return model.to(device).eval()


class _Released(nn.Module):
    """Gives a network the ``model.`` key prefix of the released files."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.model = net


def save_checkpoint(net: nn.Module, directory: str | Path, variant: str, *, dedupe: bool = True) -> Path:
    """Write ``net`` in the released Hugging Face layout (the inverse of ``load_model``):
    ``config.json`` = ``{"model_name": variant}`` and ``model.safetensors`` with keys ``model.<...>``.

    ``dedupe=True`` stores tied tensors once, as huggingface_hub's mixin does (437 keys for
    da3-small); ``False`` writes every name (443 keys). Works for our network and the official one.
    """
    from safetensors.torch import save_file, save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_name": variant}))
    wrapper = _Released(net)
    target = directory / "model.safetensors"
    if dedupe:
        save_model(wrapper, str(target), metadata={"format": "pt"})
    else:
        state = {k: v.detach().clone().contiguous() for k, v in wrapper.state_dict().items()}
        save_file(state, str(target), metadata={"format": "pt"})
    return directory
