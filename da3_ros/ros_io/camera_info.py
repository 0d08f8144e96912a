"""sensor_msgs/CameraInfo <-> CameraIntrinsics.

Validation rejects what a robot must not use: zero or non-finite focal lengths, a non-finite K or D,
and a zero image size. Binning and ROI are honoured only when trivial (binning 0/1 and an empty or
full ROI); anything else is rejected rather than silently mis-scaled.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo

from ..camera_intrinsics import CameraIntrinsics
from .errors import MessageConversionError


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """CameraInfo -> CameraIntrinsics (raises MessageConversionError when unusable)."""
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise MessageConversionError(f"CameraInfo has zero image size {width}x{height}")
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(K)):
        raise MessageConversionError(f"CameraInfo K contains NaN/Inf: {K.ravel().tolist()}")
    if K[0, 0] <= 0.0 or K[1, 1] <= 0.0:
        raise MessageConversionError(f"CameraInfo K has non-positive focal length fx={K[0, 0]} fy={K[1, 1]}")
    D = np.asarray(msg.d, dtype=np.float64)
    if not np.all(np.isfinite(D)):
        raise MessageConversionError(f"CameraInfo D contains NaN/Inf: {D.tolist()}")
    if int(msg.binning_x) > 1 or int(msg.binning_y) > 1:
        raise MessageConversionError(f"CameraInfo binning {msg.binning_x}x{msg.binning_y} is not supported")
    roi = msg.roi
    if roi.width or roi.height:
        if (roi.x_offset, roi.y_offset, roi.width, roi.height) != (0, 0, width, height):
            raise MessageConversionError(
                f"CameraInfo ROI {roi.width}x{roi.height}+{roi.x_offset}+{roi.y_offset} is not supported")
    return CameraIntrinsics(width, height, K, str(msg.distortion_model), D)


def intrinsics_to_camera_info(intr: CameraIntrinsics, *, header=None) -> CameraInfo:
    """CameraIntrinsics -> CameraInfo (monocular: R = I, P = [K | 0])."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = intr.distortion_model or ("plumb_bob" if intr.distortion.size else "")
    msg.d = [float(v) for v in intr.distortion]
    K = np.asarray(intr.K, dtype=np.float64)
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    return msg
