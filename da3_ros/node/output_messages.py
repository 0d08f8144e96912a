"""Build the camera-frame output messages of one processed frame (shared by the node and the
benchmarks so that what is measured is what is published)."""
from __future__ import annotations

from std_msgs.msg import Header

from ..ros_io import build_pointcloud2, intrinsics_to_camera_info, numpy_to_image


def camera_frame_messages(result, header: Header, *, depth: bool = True, confidence: bool = True,
                          points: bool = True) -> dict:
    """{'depth', 'depth_info', 'confidence', 'points'} messages (those asked for and available)."""
    out = {}
    if depth:
        out["depth"] = numpy_to_image(result.depth, "32FC1", header=header)
        out["depth_info"] = intrinsics_to_camera_info(result.camera_intrinsics, header=header)
    if confidence and result.confidence is not None:
        out["confidence"] = numpy_to_image(result.confidence, "32FC1", header=header)
    if points and result.points is not None:
        out["points"] = build_pointcloud2(result.points, result.point_colours, header=header)
    return out
