"""sensor_msgs/Image encodings (names and semantics of sensor_msgs/image_encodings.hpp / cv_bridge).

Each supported encoding maps to the numpy dtype of one channel and the number of channels of the
array that ``image_to_numpy`` returns (cv_bridge "passthrough" semantics: a (H, W) array for one
channel, (H, W, C) otherwise). The packed 4:2:2 encodings are 2 channels of uint8:
``yuv422``/``uyvy`` = U Y0 V Y1 byte order, ``yuv422_yuy2``/``yuyv`` = Y0 U Y1 V.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import MessageConversionError


@dataclass(frozen=True)
class EncodingInfo:
    name: str
    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


_NAMED = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "rgb16": (np.uint16, 3), "bgr16": (np.uint16, 3), "rgba16": (np.uint16, 4), "bgra16": (np.uint16, 4),
    "mono8": (np.uint8, 1), "mono16": (np.uint16, 1),
    "yuv422": (np.uint8, 2), "uyvy": (np.uint8, 2), "yuv422_yuy2": (np.uint8, 2), "yuyv": (np.uint8, 2),
}
_CV_DEPTH = {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16, "32S": np.int32,
             "32F": np.float32, "64F": np.float64}
_CV_PATTERN = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")

#: Packed 4:2:2 encodings and their byte order.
UYVY_ENCODINGS = frozenset({"yuv422", "uyvy"})
YUYV_ENCODINGS = frozenset({"yuv422_yuy2", "yuyv"})


def encoding_info(encoding: str) -> EncodingInfo:
    """Describe an encoding name; raises MessageConversionError for unknown names."""
    if encoding in _NAMED:
        dtype, channels = _NAMED[encoding]
        return EncodingInfo(encoding, np.dtype(dtype), channels)
    match = _CV_PATTERN.match(encoding)
    if match:
        return EncodingInfo(encoding, np.dtype(_CV_DEPTH[match.group(1)]), int(match.group(2)))
    supported = ", ".join(sorted(_NAMED)) + ", 8UC1..64FC4"
    raise MessageConversionError(f"unsupported image encoding '{encoding}' (supported: {supported})")
