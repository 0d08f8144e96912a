"""The unit of the published depth, points and map (``WindowProcessor.depth_unit``; shown on /diagnostics).

Decided from the model's capabilities and the configured scale sources, never from the variant name: models
that predict poses give *odometry units* (the first window's scale; with a window of 1 view: per-frame model
units), metres once a configured metric scale is known. Models without poses give per-frame depth: a
metric-depth model in metres (``raw * f / METRIC_CANONICAL_FOCAL`` with f from camera_info) while camera_info
is known, else its raw canonical metric depth (metres only at a 300 px focal length: NOT metres); a mono model
relative, unitless depth.
"""
from __future__ import annotations

__all__ = ["METRIC_CANONICAL_FOCAL", "DEPTH_UNIT_ODOMETRY", "DEPTH_UNIT_MODEL_PER_FRAME", "DEPTH_UNIT_METRES",
           "DEPTH_UNIT_CANONICAL_METRIC", "DEPTH_UNIT_RELATIVE", "DEPTH_UNIT_SCALE_UNKNOWN", "depth_unit"]

METRIC_CANONICAL_FOCAL = 300.0
"""The focal length (px) at which a DA3 metric model's raw depth is metres."""

DEPTH_UNIT_ODOMETRY = "odometry units (scale of the first window)"
DEPTH_UNIT_MODEL_PER_FRAME = "model units (per-frame scale: a window of 1 view has no odometry)"
DEPTH_UNIT_METRES = "m"
DEPTH_UNIT_CANONICAL_METRIC = ("canonical metric, not metres (metres at a 300 px focal length; "
                               "needs camera_info for metres)")
DEPTH_UNIT_RELATIVE = "relative (per-frame, unitless)"
DEPTH_UNIT_SCALE_UNKNOWN = "odometry units (metric scale unknown yet)"


def depth_unit(*, scale_expected: bool, scale_known: bool, tracking: bool, predicts_poses: bool,
               metric_depth: bool, camera_info_known: bool) -> str:
    """One of the ``DEPTH_UNIT_*`` strings (see the module docstring)."""
    if scale_expected:
        return DEPTH_UNIT_METRES if scale_known else DEPTH_UNIT_SCALE_UNKNOWN
    if tracking:
        return DEPTH_UNIT_ODOMETRY
    if predicts_poses:
        return DEPTH_UNIT_MODEL_PER_FRAME
    if metric_depth:
        return DEPTH_UNIT_METRES if camera_info_known else DEPTH_UNIT_CANONICAL_METRIC
    return DEPTH_UNIT_RELATIVE
