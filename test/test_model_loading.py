"""Strict checkpoint loading: key sets of every variant, tied tensors, sources, error messages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file, save_model

from da3_ros.model import VARIANTS, CheckpointError, build_model, load_model
from da3_ros.model.checkpoint import check_state_dict, strip_prefix, tied_parameter_groups

KEYS_JSON = Path("/work/shared/docs/da3_state_dict_keys.json")
TIED = [f"head.scratch.output_conv2_aux.{i}.2.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]


@pytest.fixture(scope="module")
def released_keys():
    if not KEYS_JSON.is_file():
        pytest.skip(f"released key listing {KEYS_JSON} not available")
    return json.loads(KEYS_JSON.read_text())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_module_tree_matches_released_keys_and_shapes(variant, released_keys):
    """Every variant (giant/nested on the meta device) has exactly the released names/shapes."""
    model = build_model(variant, device="meta")
    ours = {f"model.{k}": list(v.shape) for k, v in model.state_dict().items()}
    ref = released_keys[variant]["keys"]
    assert len(ref) == released_keys[variant]["nkeys"]
    assert sorted(set(ref) - set(ours)) == [] and sorted(set(ours) - set(ref)) == []
    assert {k: ours[k] for k in ref} == ref
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == released_keys[variant]["nparams"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_strict_check_accepts_released_layout_and_names_bad_keys(variant, released_keys):
    model = build_model(variant, device="meta")
    state = {k: torch.empty(v, device="meta") for k, v in released_keys[variant]["keys"].items()}
    # released files store the tied ray-neck LayerNorm once
    tied = [k for k in state if any(k.endswith(t) for t in TIED)]
    assert len(tied) == (0 if variant in ("da3metric-large", "da3mono-large") else 6)
    dedup = {k: v for k, v in state.items() if k not in tied}
    full = check_state_dict(model, strip_prefix(dedup))
    assert set(full) == set(model.state_dict())
    model.load_state_dict(full, strict=True, assign=True)

    broken = dict(dedup)
    gone = next(k for k in broken if "blocks.3.attn.qkv.weight" in k)
    del broken[gone]
    broken["model.backbone.pretrained.extra_token"] = torch.empty(3, device="meta")
    with pytest.raises(CheckpointError) as err:
        check_state_dict(model, strip_prefix(broken))
    msg = str(err.value)
    assert "1 missing key(s)" in msg and gone[len("model."):] in msg
    assert "1 unexpected key(s)" in msg and "backbone.pretrained.extra_token" in msg


def test_tied_groups_are_only_the_ray_neck_norm():
    groups = tied_parameter_groups(build_model("da3-small", device="meta"))
    assert sorted(sorted(g) for g in groups) == [
        [f"head.scratch.output_conv2_aux.{i}.2.bias" for i in range(4)],
        [f"head.scratch.output_conv2_aux.{i}.2.weight" for i in range(4)]]
    assert tied_parameter_groups(build_model("da3metric-large", device="meta")) == []


@pytest.fixture(scope="module")
def small_state():
    torch.manual_seed(0)
    model = build_model("da3-small")
    return model


def test_shape_mismatch_is_reported(small_state):
    state = {k: v.clone() for k, v in small_state.state_dict().items()}
    state["cam_dec.fc_t.weight"] = torch.zeros(4, 768)
    with pytest.raises(CheckpointError,
                       match=r"shape mismatch.*cam_dec.fc_t.weight: checkpoint \(4, 768\) vs model \(3, 768\)"):
        check_state_dict(build_model("da3-small", device="meta"), state)


def test_differing_tied_values_are_rejected(small_state):
    state = {k: v.clone() for k, v in small_state.state_dict().items()}
    state["head.scratch.output_conv2_aux.2.2.weight"] += 1.0
    with pytest.raises(CheckpointError, match="tied parameters"):
        check_state_dict(build_model("da3-small", device="meta"), state)


def _same(a, b, run=False):
    sa, sb = a.state_dict(), b.state_dict()
    same = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    if run:
        x = torch.randn(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            oa, ob = a(x), b(x)
        same = same and all(torch.equal(oa[k], ob[k]) for k in oa)
    return same


def test_sources_single_file_pth_and_directory(small_state, tmp_path):
    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_name": "da3-small"}))
    save_model(Wrapper(small_state), str(d / "model.safetensors"))
    assert _same(load_model(d), small_state, run=True)
    assert _same(load_model(d / "model.safetensors"), small_state)  # config.json beside it

    single = tmp_path / "single.safetensors"
    save_model(Wrapper(small_state), str(single))
    with pytest.raises(CheckpointError, match="pass the variant"):
        load_model(single)
    assert _same(load_model(single, variant="da3-small"), small_state)
    with pytest.raises(CheckpointError, match="does not match da3-base"):
        load_model(single, variant="da3-base")
    with pytest.raises(CheckpointError, match="config.json says 'da3-small'"):
        load_model(d, variant="da3-base")

    pth = tmp_path / "weights.pth"
    torch.save({"state_dict": small_state.state_dict()}, pth)  # unprefixed names, all 443
    assert _same(load_model(pth, variant="da3-small"), small_state)


def test_bad_sources_fail_with_specific_messages(tmp_path):
    with pytest.raises(CheckpointError, match="neither an existing file/directory nor"):
        load_model(tmp_path / "nothing_here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_model(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_name": "da3-tiny"}))
    save_file({"x": torch.zeros(1)}, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match="'da3-tiny' is not a known variant"):
        load_model(bad)
    txt = tmp_path / "w.txt"
    txt.write_text("x")
    with pytest.raises(CheckpointError, match="unsupported checkpoint file type"):
        load_model(txt, variant="da3-small")


def test_repo_id_offline_fails_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # closed port: no network
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        load_model("depth-anything/DA3-SMALL")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "depth-anything/DA3-SMALL" in msg and "hf download depth-anything/DA3-SMALL" in msg
    assert "model_file_path" in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE"):
        load_model("depth-anything/DA3-SMALL")
