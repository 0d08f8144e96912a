"""Raw (distorted) camera models and their rectification into a pinhole camera (ROS-free; numpy + OpenCV).

- :mod:`~da3_ros.camera_models.rectification`: :class:`RawCamera` (the numbers of a
  sensor_msgs/CameraInfo), :class:`Rectifier` (undistort/rectify maps built once per camera_info,
  cached, and the remap of an image into the pinhole camera of P) and :class:`RectificationError`.
"""
from da3_ros.camera_models.rectification import (
    DISTORTION_COEFFICIENTS,
    RawCamera,
    Rectification,
    RectificationError,
    Rectifier,
)

__all__ = ["DISTORTION_COEFFICIENTS", "RawCamera", "Rectification", "RectificationError", "Rectifier"]
