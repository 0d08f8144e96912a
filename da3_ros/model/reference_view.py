"""Reference-view selection for a window of N views (which view defines the world frame).

Strategies and their names/parsing: da3_ros.artifact.ref_view (``REF_VIEW_STRATEGIES``; only applied
when N >= 3, otherwise view 0 is used). An ``int`` selects that view at any N.
The selection works on the per-view special (cls) tokens ``(B, N, C)`` and returns ``(B,)`` indices;
it uses only static shapes (argmin/argmax), so it exports to ONNX.
"""

from __future__ import annotations

import torch

from da3_ros.artifact.ref_view import validate_ref_view

MIN_VIEWS_FOR_SELECTION = 3


def _minmax(m: torch.Tensor) -> torch.Tensor:
    lo = m.min(dim=1, keepdim=True).values
    hi = m.max(dim=1, keepdim=True).values
    return (m - lo) / (hi - lo + 1e-8)


def select_reference_view(tokens: torch.Tensor, ref_view: str | int) -> torch.Tensor | int:
    """Reference view per batch item from the special tokens ``(B, N, C)``.

    Returns a python ``int`` when the choice does not depend on the data (``first``/``middle``/
    index, or N < 3), else a ``(B,)`` long tensor.
    """
    n = tokens.shape[1]
    validate_ref_view(ref_view, n)
    if isinstance(ref_view, int):
        return ref_view % n
    if n < MIN_VIEWS_FOR_SELECTION or ref_view == "first":
        return 0
    if ref_view == "middle":
        return n // 2
    unit = tokens / tokens.norm(dim=-1, keepdim=True)
    sim = unit @ unit.transpose(1, 2) - torch.eye(n, dtype=unit.dtype, device=unit.device)
    if ref_view == "saddle_sim_range":
        return (sim.max(dim=-1).values - sim.min(dim=-1).values).argmax(dim=1)
    sim_score = sim.sum(dim=-1) / (n - 1)
    score = ((_minmax(sim_score) - 0.5).abs() + (_minmax(tokens.norm(dim=-1)) - 0.5).abs()
             + (_minmax(unit.var(dim=-1)) - 0.5).abs())
    return score.argmin(dim=1)


def reference_mask(ref: torch.Tensor | int, batch: int, num_views: int,
                   device: torch.device) -> torch.Tensor:
    """Boolean ``(B, N, 1)`` mask, True at the reference view of each batch item."""
    views = torch.arange(num_views, device=device)
    if isinstance(ref, int):
        return (views == ref).view(1, num_views, 1).expand(batch, num_views, 1)
    return (views[None, :] == ref[:, None]).unsqueeze(-1)
