"""sensor_msgs/CompressedImage (jpeg/png) <-> numpy.

``format`` follows compressed_image_transport: ``"<orig encoding>; <jpeg|png> compressed <encoding>"``
(e.g. ``"rgb8; jpeg compressed bgr8"``); a bare ``"jpeg"``/``"png"`` is accepted too. Colour images
are stored by OpenCV in BGR order, so the decoded colour array is BGR and ``compressed_to_rgb``
converts it.
"""
from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage

from .errors import MessageConversionError
from .image_conversion import _buffer_bytes, new_uint8_buffer, set_uint8_data, to_rgb8

_FORMATS = ("jpeg", "jpg", "png")


def _codec_of(fmt: str) -> str:
    low = fmt.lower()
    for codec in _FORMATS:
        if codec in low:
            return "png" if codec == "png" else "jpeg"
    raise MessageConversionError(f"unsupported CompressedImage format '{fmt}' (expected jpeg or png)")


def compressed_to_numpy(msg: CompressedImage) -> tuple[np.ndarray, str]:
    """Decode -> (array, encoding) where encoding is bgr8, bgra8, mono8 or mono16."""
    _codec_of(msg.format)
    buf = np.frombuffer(_buffer_bytes(msg.data), dtype=np.uint8)
    if buf.size == 0:
        raise MessageConversionError(f"empty CompressedImage ({msg.format})")
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise MessageConversionError(
            f"CompressedImage could not be decoded as {msg.format} ({buf.size} bytes; truncated or corrupt?)")
    if decoded.ndim == 2:
        return decoded, ("mono16" if decoded.dtype == np.uint16 else "mono8")
    if decoded.dtype != np.uint8:
        decoded = (decoded >> 8).astype(np.uint8)
    return decoded, ("bgra8" if decoded.shape[2] == 4 else "bgr8")


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode to RGB uint8 (H, W, 3)."""
    arr, encoding = compressed_to_numpy(msg)
    return to_rgb8(arr, encoding)


def numpy_to_compressed(array_: np.ndarray, encoding: str, fmt: str = "jpeg", *, quality: int = 95,
                        header=None) -> CompressedImage:
    """Encode an array of ``encoding`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16) as jpeg or png."""
    codec = _codec_of(fmt)
    arr = np.ascontiguousarray(array_)
    if encoding == "rgb8":
        stored, stored_enc = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), "bgr8"
    elif encoding == "rgba8":
        stored, stored_enc = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA), "bgra8"
    elif encoding in ("bgr8", "bgra8", "mono8", "mono16"):
        stored, stored_enc = arr, encoding
    else:
        raise MessageConversionError(f"cannot compress encoding '{encoding}'")
    if codec == "jpeg" and stored_enc in ("mono16", "bgra8"):
        raise MessageConversionError(f"jpeg cannot store {encoding}; use png")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", stored, params)
    if not ok:
        raise MessageConversionError(f"OpenCV failed to encode {encoding} as {codec}")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = f"{encoding}; {codec} compressed {stored_enc}"
    data, view = new_uint8_buffer(encoded.size)
    view[:] = encoded.reshape(-1)
    set_uint8_data(msg, data)
    return msg
