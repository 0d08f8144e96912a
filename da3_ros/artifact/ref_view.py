"""Reference-view names and parsing: which view of a window defines the world frame.

Strategies (as in the official code; only applied when N >= 3, otherwise view 0 is used):
``"saddle_balanced"`` (official default), ``"saddle_sim_range"``, ``"first"`` (view 0),
``"middle"`` (view N // 2). An ``int`` selects that view at any N (negative counts from the end).
Configuration and sidecars carry the choice as a string (``str(value)``: ``"2"`` is view 2);
:func:`parse_ref_view` turns it back into a strategy name or an index. The selection itself runs
in the model (da3_ros.model.reference_view).
"""
from __future__ import annotations

from typing import Optional, Union

REF_VIEW_STRATEGIES = ("saddle_balanced", "saddle_sim_range", "first", "middle")

RefView = Union[str, int]


def parse_ref_view(value) -> RefView:
    """``"first"``/``"saddle_balanced"``/``"middle"``/``"saddle_sim_range"`` stay strings; ``"2"``/``2``
    (a view index, negative counts from the end) becomes an int. Raise ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"ref_view must be a strategy name or a view index, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text not in REF_VIEW_STRATEGIES:
        raise ValueError(f"unknown ref_view {text!r}; expected one of {REF_VIEW_STRATEGIES} or a view index")
    return text


def parse_optional_ref_view(value) -> Optional[RefView]:
    """As :func:`parse_ref_view`, but ``None`` / ``""`` (a node parameter left empty) is ``None``:
    "whatever the model file says"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_ref_view(value)


def validate_ref_view(ref_view: RefView, num_views: int) -> None:
    """Raise ``ValueError`` for an unknown strategy or an out-of-range view index."""
    if isinstance(ref_view, bool) or not isinstance(ref_view, (str, int)):
        raise ValueError(f"ref_view must be a strategy name or a view index, got {ref_view!r}")
    if isinstance(ref_view, str) and ref_view not in REF_VIEW_STRATEGIES:
        raise ValueError(
            f"unknown ref_view strategy {ref_view!r}; expected one of {REF_VIEW_STRATEGIES} "
            "or a view index")
    if isinstance(ref_view, int) and not -num_views <= ref_view < num_views:
        raise ValueError(f"ref_view index {ref_view} out of range for {num_views} views")
