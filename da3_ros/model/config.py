"""Architecture configurations of every released Depth Anything 3 (DA3) variant.

A variant name is the stem of the official config file and the value of ``model_name`` in the
released ``config.json`` (e.g. ``"da3-small"``). The numbers below are the official architecture
(see docs/DA3_MODEL_SPEC.md section 1); they decide the module tree and hence the parameter names
and shapes of a released ``model.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PATCH_SIZE = 14
"""Side of one ViT patch in pixels; network input sides must be multiples of it."""

POS_EMBED_GRID = 37
"""The learned absolute positional embedding covers a 37 x 37 patch grid (518 x 518 pixels)."""

DEFAULT_PROCESS_RES = 504
"""Default longest side of the network input (official ``process_res``)."""


@dataclass(frozen=True)
class DA3Config:
    """Architecture of one single-network DA3 variant (all sizes in channels / block indices).

    ``alt_start == -1`` means a monocular network (no cross-view attention, no camera tokens,
    no camera heads, DPT head with sky output). Otherwise blocks ``i >= alt_start`` with odd ``i``
    attend across views, a learned camera token replaces the cls token at block ``alt_start`` and the
    DualDPT head plus the camera encoder/decoder exist.
    """

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    ffn: str  # "mlp" (GELU MLP, 4x) or "swiglu" (SwiGLU, hidden = ffn_hidden)
    ffn_hidden: int
    out_layers: tuple[int, int, int, int]
    alt_start: int
    qknorm_start: int
    rope_start: int
    cat_token: bool
    head: str  # "dualdpt" or "dpt"
    head_features: int
    head_out_channels: tuple[int, int, int, int]
    camera_heads: bool  # cam_enc + cam_dec present
    metric_depth: bool = False  # ``depth`` is canonical metric (metres at a 300 px focal length): da3metric
    gs_head: bool = False  # giant only: Gaussian-splat head (parameters only, never run here)
    rope_frequency: float = 100.0
    cam_enc_heads: int = 16
    cam_enc_depth: int = 4

    @property
    def multi_view(self) -> bool:
        """True for the any-view variants (cross-view attention + poses)."""
        return self.alt_start != -1

    @property
    def descriptor_block(self) -> int:
        """The block whose output patch tokens are pooled into the place-recognition descriptor: the last
        within-view block before cross-view attention (``alt_start - 1``), or the first ``out_layers`` block of a
        monocular network."""
        return self.alt_start - 1 if self.multi_view else self.out_layers[0]

    @property
    def head_dim_in(self) -> int:
        """Channels of the backbone features fed to the head (2C with ``cat_token``)."""
        return self.embed_dim * (2 if self.cat_token else 1)

    @property
    def has_sky(self) -> bool:
        """Monocular DPT heads (metric/mono) predict a sky map."""
        return self.head == "dpt"


@dataclass(frozen=True)
class NestedConfig:
    """The nested variant: an any-view network (``da3``) plus a metric network (``da3_metric``)."""

    name: str
    anyview: DA3Config
    metric: DA3Config
    multi_view: bool = field(default=True)


def _vit(name: str, size: str, **kw) -> DA3Config:
    dims = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "g": (1536, 40, 24)}
    c, depth, heads = dims[size]
    ffn, hidden = ("swiglu", 4096) if size == "g" else ("mlp", 4 * c)
    return DA3Config(name=name, embed_dim=c, depth=depth, num_heads=heads, ffn=ffn,
                     ffn_hidden=hidden, **kw)


_MV = dict(cat_token=True, head="dualdpt", camera_heads=True)
_MONO = dict(out_layers=(4, 11, 17, 23), alt_start=-1, qknorm_start=-1, rope_start=-1,
             cat_token=False, head="dpt", head_features=256,
             head_out_channels=(256, 512, 1024, 1024), camera_heads=False)

VARIANTS: dict[str, DA3Config | NestedConfig] = {
    "da3-small": _vit("da3-small", "s", out_layers=(5, 7, 9, 11), alt_start=4, qknorm_start=4,
                      rope_start=4, head_features=64, head_out_channels=(48, 96, 192, 384), **_MV),
    "da3-base": _vit("da3-base", "b", out_layers=(5, 7, 9, 11), alt_start=4, qknorm_start=4,
                     rope_start=4, head_features=128, head_out_channels=(96, 192, 384, 768), **_MV),
    "da3-large": _vit("da3-large", "l", out_layers=(11, 15, 19, 23), alt_start=8, qknorm_start=8,
                      rope_start=8, head_features=256, head_out_channels=(256, 512, 1024, 1024),
                      **_MV),
    "da3-giant": _vit("da3-giant", "g", out_layers=(19, 27, 33, 39), alt_start=13, qknorm_start=13,
                      rope_start=13, head_features=256, head_out_channels=(256, 512, 1024, 1024),
                      gs_head=True, **_MV),
    "da3metric-large": _vit("da3metric-large", "l", metric_depth=True, **_MONO),
    "da3mono-large": _vit("da3mono-large", "l", **_MONO),
}
VARIANTS["da3nested-giant-large"] = NestedConfig(
    name="da3nested-giant-large", anyview=VARIANTS["da3-giant"], metric=VARIANTS["da3metric-large"])

HF_REPOS: dict[str, str] = {
    "da3-small": "depth-anything/DA3-SMALL",
    "da3-base": "depth-anything/DA3-BASE",
    "da3-large": "depth-anything/DA3-LARGE-1.1",
    "da3-giant": "depth-anything/DA3-GIANT-1.1",
    "da3metric-large": "depth-anything/DA3METRIC-LARGE",
    "da3mono-large": "depth-anything/DA3MONO-LARGE",
    "da3nested-giant-large": "depth-anything/DA3NESTED-GIANT-LARGE-1.1",
}
"""Hugging Face repositories holding the released weights (newest revision of each variant)."""


def get_config(variant: str) -> DA3Config | NestedConfig:
    """Return the configuration of ``variant``; raise ``ValueError`` naming the known variants."""
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(
            f"unknown DA3 variant {variant!r}; known variants: {', '.join(VARIANTS)}") from None
