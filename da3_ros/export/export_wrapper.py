"""The module traced by the ONNX export: uint8 NHWC images in, DA3's outputs out as a tuple.

:func:`make_export_wrapper` wraps a DA3 model so that the graph contract of INTERFACES.md holds:
input ``images`` uint8 ``(1, N, H, W, 3)`` RGB (+ ``pose_encoding`` float32 ``(1, N, 9)`` for
pose-conditioned graphs), normalised inside the graph by the model's one uint8 rule
(da3_ros.model.normalization.normalize_uint8_images: cast to float32 *before* the NHWC->NCHW Transpose,
which TensorRT rejects on UInt8, then ImageNet mean/std); outputs in the contract's order
(da3_ros.artifact.tensors.OUTPUT_NAMES; ``with_descriptor`` adds the place-recognition ``descriptor``).
A fixed reference view other than the first is handled with a constant view permutation.
:func:`example_inputs` / :func:`example_pose_encoding` give deterministic tracing inputs and
:func:`probe_outputs` runs the wrapper once to learn its output names and shapes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from da3_ros.artifact.ref_view import validate_ref_view
from da3_ros.artifact.tensors import OUTPUT_NAMES


def make_export_wrapper(model, *, ref_view: Union[str, int] = "saddle_balanced", pose_conditioned: bool = False,
                        with_rays: bool = False, with_descriptor: bool = False):
    """nn.Module: ``(images uint8 (1,N,H,W,3)[, pose_encoding (1,N,9)]) -> tuple of outputs``.

    The output names are set on the returned module as ``output_names`` after
    :func:`probe_outputs` ran it once.
    """
    import torch
    from torch import nn

    from da3_ros.model.normalization import normalize_uint8_images

    class DA3ExportWrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.output_names: List[str] = []

        def outputs_dict(self, images: torch.Tensor, pose_encoding: Optional[torch.Tensor] = None):
            kwargs = {"ref_view": ref_view}
            if pose_conditioned:
                kwargs["pose_encoding"] = pose_encoding
            if with_rays:
                kwargs["return_rays"] = True
            if with_descriptor:
                kwargs["return_descriptor"] = True
            x = normalize_uint8_images(images)
            n = int(images.shape[1])
            perm = None
            fixed = _fixed_reference_index(ref_view, n, pose_conditioned)
            if fixed is not None and fixed != 0:
                # A fixed reference index (or "middle") is traced as a tensor expression of N by the
                # model's selection code and breaks tracing; the backbone is view-permutation
                # equivariant except for the reference token (DA3_MODEL_SPEC 2.5 / 10.4), so move the
                # reference view first with a constant permutation, run "first", and permute back.
                perm = [fixed] + [i for i in range(n) if i != fixed]
                x = x[:, perm]
                kwargs["ref_view"] = "first"
            elif fixed == 0:
                kwargs["ref_view"] = "first"
            out = self.model(x, **kwargs)
            out = {k: out[k] for k in OUTPUT_NAMES if out.get(k) is not None}
            if perm is not None:
                inverse = [perm.index(i) for i in range(n)]
                out = {k: v[:, inverse] for k, v in out.items()}
            return out

        def forward(self, images: torch.Tensor, pose_encoding: Optional[torch.Tensor] = None):
            out = self.outputs_dict(images, pose_encoding)
            return tuple(out[k].float() for k in self.output_names)

    return DA3ExportWrapper().eval()


def _fixed_reference_index(ref_view: Union[str, int], views: int, pose_conditioned: bool) -> Optional[int]:
    """The reference view when it does not depend on the images, else None (selected in-graph)."""
    if pose_conditioned:
        return None  # the camera encoder replaces the reference token; ref_view is unused
    validate_ref_view(ref_view, views)
    if isinstance(ref_view, int):
        return ref_view % views
    if ref_view == "first":
        return 0
    if ref_view == "middle":
        return views // 2 if views >= 3 else 0
    return None if views >= 3 else 0


def example_inputs(views: int, height: int, width: int, *, pose_conditioned: bool, seed: int = 0):
    """Deterministic example inputs for tracing / checks: uint8 images (+ a plausible pose encoding)."""
    import torch

    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, size=(1, views, height, width, 3), dtype=np.uint8))
    if not pose_conditioned:
        return (images,)
    return (images, torch.from_numpy(example_pose_encoding(views, rng)[None]))


def example_pose_encoding(views: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 9) float32: small camera-to-world translations, unit quaternions (xyzw, w >= 0), fov ~1 rad."""
    t = rng.normal(scale=0.3, size=(views, 3))
    q = rng.normal(size=(views, 4)) * np.array([0.1, 0.1, 0.1, 1.0])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, 3:4]) + (q[:, 3:4] == 0)
    fov = rng.uniform(0.8, 1.2, size=(views, 2))
    pe = np.concatenate([t, q, fov], axis=1).astype(np.float32)
    pe[0, :7] = [0, 0, 0, 0, 0, 0, 1]
    return pe


def probe_outputs(wrapper, inputs) -> Dict[str, Tuple[int, ...]]:
    """Run the wrapper eagerly once; set ``wrapper.output_names``; return name -> shape."""
    import torch

    with torch.inference_mode():
        out = wrapper.outputs_dict(*inputs)
    wrapper.output_names = list(out)
    return {k: tuple(v.shape) for k, v in out.items()}


def needs_selection_tokens(ref_view: Union[str, int], views: int, pose_conditioned: bool) -> bool:
    """Whether a window graph selects its reference view in-graph from the views' selection tokens."""
    return not pose_conditioned and _fixed_reference_index(ref_view, views, pose_conditioned) is None


def make_encoder_wrapper(model, *, with_descriptor: bool = False):
    """nn.Module of a split export's per-view encoder: ``images`` uint8 ``(1, 1, H, W, 3)`` ->
    ``(view_tokens (1, 1, T, C), selection_token (1, 1, C)[, descriptor (1, 1, C)])``
    (da3_ros.model.DA3Model.encode_views; ``with_descriptor``: the view's place-recognition descriptor, which is
    taken before cross-view attention and so belongs to the per-view graph)."""
    import torch
    from torch import nn

    from da3_ros.model.normalization import normalize_uint8_images

    class DA3EncoderWrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor):
            out = self.model.encode_views(normalize_uint8_images(images), return_descriptor=with_descriptor)
            return tuple(t.float() for t in out)

    return DA3EncoderWrapper().eval()


def make_window_wrapper(model, *, height: int, width: int, ref_view: Union[str, int] = "saddle_balanced",
                        pose_conditioned: bool = False, with_rays: bool = False):
    """nn.Module of a split export's window graph: ``(view_tokens (1, N, T, C)[, selection_token (1, N, C)]
    [, pose_encoding (1, N, 9)])`` -> the monolithic graph's outputs (``output_names`` set by
    :func:`probe_window_outputs`). Inputs are positional in that order; ``selection_token`` is present iff
    :func:`needs_selection_tokens`. Fixed references use the monolithic wrapper's view permutation."""
    import torch
    from torch import nn

    class DA3WindowWrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.output_names: List[str] = []

        def outputs_dict(self, tokens: torch.Tensor, *rest: torch.Tensor):
            n = int(tokens.shape[1])
            rest = list(rest)
            selection = rest.pop(0) if needs_selection_tokens(ref_view, n, pose_conditioned) else None
            kwargs = {"ref_view": ref_view, "height": height, "width": width, "return_rays": with_rays}
            if pose_conditioned:
                kwargs["pose_encoding"] = rest.pop(0)
            fixed = _fixed_reference_index(ref_view, n, pose_conditioned)
            perm = None
            if fixed is not None:
                kwargs["ref_view"] = "first"
                if fixed != 0:
                    perm = [fixed] + [i for i in range(n) if i != fixed]
                    tokens = tokens[:, perm]
            out = self.model.forward_tokens(tokens, selection, **kwargs)
            out = {k: out[k] for k in OUTPUT_NAMES if out.get(k) is not None}
            if perm is not None:
                inverse = [perm.index(i) for i in range(n)]
                out = {k: v[:, inverse] for k, v in out.items()}
            return out

        def forward(self, tokens: torch.Tensor, *rest: torch.Tensor):
            out = self.outputs_dict(tokens, *rest)
            return tuple(out[k].float() for k in self.output_names)

    return DA3WindowWrapper().eval()
