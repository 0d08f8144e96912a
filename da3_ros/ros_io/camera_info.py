"""sensor_msgs/CameraInfo <-> PinholeCamera.

Both use the same pixel convention (pixel centres at integer coordinates), so K is copied unchanged.
Validation rejects what a robot must not use: everything :class:`PinholeCamera` rejects (zero or
huge image size, non-finite K or D, focal lengths outside [MIN_FOCAL_PX, MAX_FOCAL_PX], principal
point or skew beyond MAX_PRINCIPAL_PX, a K that is not a pinhole matrix; see
``da3_ros.geometry.camera``). Binning and ROI are honoured only when trivial (binning 0/1 and an
empty or full ROI); anything else is rejected rather than silently mis-scaled.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo

from ..geometry.camera import InvalidCameraError, PinholeCamera
from .errors import MessageConversionError


def camera_info_to_intrinsics(msg: CameraInfo) -> PinholeCamera:
    """CameraInfo -> PinholeCamera (raises MessageConversionError, with the numbers, when unusable)."""
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise MessageConversionError(f"CameraInfo has zero image size {width}x{height}")
    if int(msg.binning_x) > 1 or int(msg.binning_y) > 1:
        raise MessageConversionError(f"CameraInfo binning {msg.binning_x}x{msg.binning_y} is not supported")
    roi = msg.roi
    if roi.width or roi.height:
        if (roi.x_offset, roi.y_offset, roi.width, roi.height) != (0, 0, width, height):
            raise MessageConversionError(
                f"CameraInfo ROI {roi.width}x{roi.height}+{roi.x_offset}+{roi.y_offset} is not supported")
    try:
        return PinholeCamera(width, height, np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
                             str(msg.distortion_model), np.asarray(msg.d, dtype=np.float64))
    except InvalidCameraError as exc:
        raise MessageConversionError(f"CameraInfo {exc}") from None


def intrinsics_to_camera_info(camera: PinholeCamera, *, header=None) -> CameraInfo:
    """PinholeCamera -> CameraInfo (monocular: R = I, P = [K | 0])."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = camera.distortion_model or ("plumb_bob" if camera.distortion.size else "")
    msg.d = [float(v) for v in camera.distortion]
    K = np.asarray(camera.K, dtype=np.float64)
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    return msg
