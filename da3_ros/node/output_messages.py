"""Build the output messages of one processed frame (shared by the node and the benchmarks so that what is
measured is what is published). The node only publishes what these return; it asks only for the outputs
that are switched on and have a subscriber, so nothing else is built.

- ``camera_frame_messages``: depth, depth/camera_info, confidence, points (camera optical frame).
- ``odometry_messages``: pose, odometry, path and the TF edge of the body (``PoseOutputs``).
- ``map_message``: the fused map (odometry frame), built on the map thread when it changes.
"""
from __future__ import annotations

from typing import Optional

from std_msgs.msg import Header

from ..ros_io import build_pointcloud2, intrinsics_to_camera_info, numpy_to_image
from .pose_outputs import PoseOutputs

#: the camera outputs: message name -> topic (one camera) or topic suffix under ``<cam>/`` (a rig)
CAMERA_FRAME_TOPICS = {"depth": "depth", "depth_info": "depth/camera_info", "confidence": "confidence",
                       "points": "points"}
CAMERA_FRAME_OUTPUTS = tuple(CAMERA_FRAME_TOPICS)
ODOMETRY_OUTPUTS = ("pose", "odometry", "path", "tf")


def camera_frame_messages(result, header: Header, *, depth: bool = True, confidence: bool = True,
                          points: bool = True, depth_info: Optional[bool] = None) -> dict:
    """{'depth', 'depth_info', 'confidence', 'points'} messages (those asked for and available);
    ``depth_info`` None = as ``depth``."""
    out = {}
    if depth:
        out["depth"] = numpy_to_image(result.depth, "32FC1", header=header)
    if (depth if depth_info is None else depth_info):
        out["depth_info"] = intrinsics_to_camera_info(result.camera_intrinsics, header=header)
    if confidence and result.confidence is not None:
        out["confidence"] = numpy_to_image(result.confidence, "32FC1", header=header)
    if points and result.points is not None:
        out["points"] = build_pointcloud2(result.points, result.point_colours, header=header)
    return out


def odometry_messages(result, stamp, odom_frame: str, camera_frame: str, poses: PoseOutputs, *, pose: bool = True,
                      odometry_msg: bool = True, path_msg: bool = True, tf: bool = True) -> dict:
    """{'pose', 'odometry', 'path', 'tf'} messages (those asked for and available): the pose outputs of the
    body (``base_frame``, or ``camera_frame`` without one) built by ``poses`` (a
    :class:`~da3_ros.node.pose_outputs.PoseOutputs`: REP 105 edge, twist, covariances, the lost / scale
    unknown convention), all stamped ``stamp``.

    ``poses`` keeps the trajectory right whatever is asked: it restarts when the trajectory was reset before
    this frame and takes the frame's pose (so switching the path output on shows it all)."""
    return poses.messages(result, stamp, camera_frame, odom_frame, pose=pose, odometry_msg=odometry_msg,
                          path_msg=path_msg, tf=tf)


def map_message(points, colours, stamp, odom_frame: str):
    """The fused map (``WindowProcessor``'s map thread: (M, 3) float32 odometry-frame points, metres once the
    metric scale is known; colours or None)
    as an unorganized PointCloud2 in ``odom_frame``, stamped with the keyframe's image stamp."""
    return build_pointcloud2(points, colours, header=Header(stamp=stamp, frame_id=odom_frame))
