"""sensor_msgs/CameraInfo <-> the project's cameras (``PinholeCamera``, ``RawCamera``).

Both use the same pixel convention (pixel centres at integer coordinates), so K and P are copied unchanged.

The node reads a camera_info with :func:`camera_info_to_camera`, which says what the image of that camera is:

- ``image_rectified=False`` (a driver's raw ``image``): a :class:`~da3_ros.camera_models.RawCamera` (distortion
  model, D, K, R, P); the pipeline rectifies each image into its pinhole camera ``P[:3, :3]``
  (``CameraStream.rectify``) before the network;
- ``image_rectified=True`` (image_proc's ``image_rect``): the :class:`PinholeCamera` ``P[:3, :3]`` (image_proc's
  convention: the rectified image's camera is P, D does not apply to it).

Validation rejects what a robot must not use, with a short ``reason`` (:class:`BadCameraInfoError`):
everything :class:`RawCamera` rejects (``unknown_distortion_model``, ``distortion_length``, ``non_finite``,
``bad_shape``, ``bad_image_size``, ``bad_K``, ``bad_R``, ``bad_P``: see ``da3_ros.camera_models``), which
includes everything :class:`PinholeCamera` rejects (zero or huge image size, non-finite K, focal lengths
outside [MIN_FOCAL_PX, MAX_FOCAL_PX], principal point or skew beyond MAX_PRINCIPAL_PX, a K that is not a pinhole
matrix; see ``da3_ros.geometry.camera``); binning and ROI (``binning``, ``roi``) are honoured only when trivial
(binning 0/1 and an empty or full ROI), anything else is rejected rather than silently mis-scaled. Given the
network input size, the camera the network sees must pass the same :class:`PinholeCamera` check
(``network_camera``: what ``CameraStream.network_intrinsics`` computes for every frame), so a focal length
that is valid at camera resolution but rounds below ``MIN_FOCAL_PX`` at network resolution is refused here
(``bad_K_at_network``), not in the worker.

:func:`intrinsics_to_camera_info` writes a pinhole camera (``depth/camera_info``): ``distortion_model``
``plumb_bob`` with an empty D for an undistorted camera (image_geometry reads it as "no distortion"; an empty
model name would be "unknown distortion" there), R = I, P = [K | 0].
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
from sensor_msgs.msg import CameraInfo

from ..camera_models import RawCamera, RectificationError
from ..geometry.camera import InvalidCameraError, PinholeCamera
from ..pipeline.network_input import network_camera
from .errors import MessageConversionError

__all__ = ["BadCameraInfoError", "camera_info_to_camera", "camera_info_to_intrinsics", "intrinsics_to_camera_info"]


class BadCameraInfoError(MessageConversionError):
    """A camera_info the node must not use (``reason``: short name for a counter; message: the numbers)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _check_size_binning_roi(msg: CameraInfo) -> Tuple[int, int]:
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise BadCameraInfoError("bad_image_size", f"CameraInfo has zero image size {width}x{height}")
    if int(msg.binning_x) > 1 or int(msg.binning_y) > 1:
        raise BadCameraInfoError("binning", f"CameraInfo binning {msg.binning_x}x{msg.binning_y} is not supported")
    roi = msg.roi
    if roi.width or roi.height:
        if (roi.x_offset, roi.y_offset, roi.width, roi.height) != (0, 0, width, height):
            raise BadCameraInfoError(
                "roi", f"CameraInfo ROI {roi.width}x{roi.height}+{roi.x_offset}+{roi.y_offset} is not supported")
    return width, height


def camera_info_to_camera(msg: CameraInfo, *, image_rectified: bool = False,
                          network_wh: Optional[Tuple[int, int]] = None) -> Union[RawCamera, PinholeCamera]:
    """The camera of the image that ``msg`` describes (see the module docstring).

    Args:
        msg: the camera_info.
        image_rectified: the image is already rectified (use P, ignore D); else it is raw (a RawCamera).
        network_wh: the network input ``(width, height)``; when given, the camera the network sees is checked too.

    Returns:
        A :class:`RawCamera` (raw image) or the :class:`PinholeCamera` ``P[:3, :3]`` (rectified image).

    Raises:
        BadCameraInfoError: unusable, with the reason and the numbers.
    """
    width, height = _check_size_binning_roi(msg)
    try:   # K first: the pinhole check words its numbers (as it did before camera models came)
        PinholeCamera(width, height, np.asarray(msg.k, dtype=np.float64).reshape(3, 3))
    except InvalidCameraError as exc:
        raise BadCameraInfoError("bad_K", f"CameraInfo {exc}") from None
    model, d = (("", ()) if image_rectified else (str(msg.distortion_model), msg.d))
    try:
        raw = RawCamera.from_fields(width, height, model, d, msg.k, msg.r, msg.p)
    except RectificationError as exc:
        text = str(exc)
        raise BadCameraInfoError(exc.reason, "CameraInfo " + (text[len("camera_info "):]
                                                              if text.startswith("camera_info ") else text)) from None
    pinhole = raw.rectified_camera
    if network_wh is not None:
        try:
            network_camera(pinhole, network_wh)
        except InvalidCameraError as exc:
            net_w, net_h = (int(v) for v in network_wh)
            raise BadCameraInfoError("bad_K_at_network", f"CameraInfo camera P[:3, :3] (K when P is unset) is "
                                     f"unusable at the network input {net_w}x{net_h} (WxH): {exc}") from None
    return pinhole if image_rectified else raw


def camera_info_to_intrinsics(msg: CameraInfo) -> PinholeCamera:
    """CameraInfo's K as it is, with the distortion model and D carried along (none when D is empty or all zero;
    tools and tests: the node reads :func:`camera_info_to_camera`). Raises :class:`BadCameraInfoError` (a
    MessageConversionError) when unusable."""
    width, height = _check_size_binning_roi(msg)
    D = np.asarray(msg.d, dtype=np.float64)
    model = str(msg.distortion_model)
    if not np.any(D != 0.0):   # empty or all zero: no distortion (the pinhole model, whatever the name says)
        model, D = "", np.zeros(0)
    try:
        return PinholeCamera(width, height, np.asarray(msg.k, dtype=np.float64).reshape(3, 3), model, D)
    except InvalidCameraError as exc:
        raise BadCameraInfoError("bad_K", f"CameraInfo {exc}") from None


def intrinsics_to_camera_info(camera: PinholeCamera, *, header=None) -> CameraInfo:
    """PinholeCamera -> CameraInfo (monocular: R = I, P = [K | 0]; no distortion: ``plumb_bob`` with D empty)."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = camera.distortion_model or "plumb_bob"
    msg.d = [float(v) for v in camera.distortion]
    K = np.asarray(camera.K, dtype=np.float64)
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    return msg
