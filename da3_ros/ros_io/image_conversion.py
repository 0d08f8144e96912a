"""sensor_msgs/Image <-> numpy, cv_bridge-compatible, honouring ``step`` and ``is_bigendian``.

``image_to_numpy`` returns a view of the message buffer whenever the data is native-endian
(rows may be strided when ``step`` has padding); call ``np.ascontiguousarray`` if you need a copy.
``numpy_to_image`` writes a tightly packed image (or with extra row padding for tests/drivers).
``image_to_rgb`` converts any supported colour/mono encoding to RGB uint8 (H, W, 3) for the model;
it first checks the declared size against the input limits (``input_limits``), so a tiny message
declaring a huge or extremely elongated image is rejected before anything is allocated.
"""
from __future__ import annotations

import array
import sys

import cv2
import numpy as np
from sensor_msgs.msg import Image

from .errors import MessageConversionError
from .image_encodings import UYVY_ENCODINGS, YUYV_ENCODINGS, encoding_info
from .input_limits import DEFAULT_INPUT_LIMITS, InputLimits

_HOST_BIG_ENDIAN = sys.byteorder == "big"


def _buffer_bytes(data) -> memoryview:
    """Zero-copy byte view of a message ``data`` field (array.array, bytes, list...)."""
    if isinstance(data, (array.array, bytes, bytearray, memoryview)):
        return memoryview(data).cast("B")
    return memoryview(bytes(data))


_ZERO_BYTE = array.array("B", [0])


def new_uint8_buffer(nbytes: int) -> tuple[array.array, np.ndarray]:
    """A message ``uint8[]`` buffer and a writable numpy view of it (fill the view, no extra copy)."""
    data = _ZERO_BYTE * int(nbytes)   # one zeroed allocation (array("B", bytes(n)) allocates and copies twice)
    return data, np.frombuffer(data, dtype=np.uint8)


def set_uint8_data(msg, data: array.array) -> None:
    """Attach ``data`` to ``msg.data`` without a copy.

    The generated setter of recent rosidl (Jazzy+) copies every array unless
    ROS_PYTHON_CHECK_FIELDS=1; the generated classes keep the field in ``_data`` (all distributions).
    """
    if hasattr(msg, "_data"):
        msg._data = data
    else:  # pragma: no cover - other message implementations
        msg.data = data


def image_to_numpy(msg: Image) -> np.ndarray:
    """Image -> (H, W) or (H, W, C) array with the encoding's dtype (cv_bridge passthrough).

    Raises MessageConversionError on unknown encodings, empty images, a ``step`` shorter than a
    row, and data whose size is not ``step * height``.
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise MessageConversionError(f"empty image: {width}x{height} ({msg.encoding})")
    if info.name in UYVY_ENCODINGS | YUYV_ENCODINGS and width % 2:
        raise MessageConversionError(f"{info.name} image width must be even, got {width}")
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise MessageConversionError(
            f"Image step {step} is smaller than one row of {width} px x {info.bytes_per_pixel} B "
            f"= {row_bytes} B ({info.name})")
    buf = _buffer_bytes(msg.data)
    expected = step * height
    if buf.nbytes != expected:
        raise MessageConversionError(
            f"Image data size mismatch: step {step} * height {height} = {expected} bytes expected, "
            f"got {buf.nbytes} ({info.name} {width}x{height})")
    dtype = info.dtype
    swap = dtype.itemsize > 1 and bool(msg.is_bigendian) != _HOST_BIG_ENDIAN
    if swap:
        dtype = dtype.newbyteorder()
    flat = np.frombuffer(buf, dtype=np.uint8)
    rows = flat.reshape(height, step)[:, :row_bytes]
    out = rows.view(dtype).reshape(height, width, info.channels)
    if swap:
        out = out.astype(info.dtype)
    return out[:, :, 0] if info.channels == 1 else out


def numpy_to_image(array_: np.ndarray, encoding: str, *, header=None, row_padding: int = 0,
                   is_bigendian: bool = _HOST_BIG_ENDIAN) -> Image:
    """numpy -> Image. ``array_`` is (H, W) or (H, W, C) matching ``encoding``.

    ``row_padding`` appends that many zero bytes to every row (``step`` grows accordingly).
    """
    info = encoding_info(encoding)
    arr = np.asarray(array_)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] != info.channels:
        raise MessageConversionError(
            f"array of shape {np.asarray(array_).shape} does not fit encoding {encoding} "
            f"({info.channels} channel(s))")
    if arr.dtype != info.dtype:
        raise MessageConversionError(f"array dtype {arr.dtype} does not fit encoding {encoding} ({info.dtype})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MessageConversionError(f"empty array of shape {arr.shape}")
    target = info.dtype.newbyteorder(">" if is_bigendian else "<")
    height, width = arr.shape[:2]
    row_bytes = width * info.bytes_per_pixel
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(bool(is_bigendian))
    msg.step = row_bytes + int(row_padding)
    data, view = new_uint8_buffer(msg.step * height)
    rows = view.reshape(height, msg.step)[:, :row_bytes]
    rows[...] = np.ascontiguousarray(arr, dtype=target).view(np.uint8).reshape(height, row_bytes)
    set_uint8_data(msg, data)
    return msg


def to_rgb8(array_: np.ndarray, encoding: str) -> np.ndarray:
    """Convert a passthrough array of ``encoding`` to RGB uint8 (H, W, 3) (a new array).

    Raises MessageConversionError when the array's dtype or channel count does not fit ``encoding``
    or the encoding is not a colour/mono image.
    """
    info = encoding_info(encoding)
    arr = np.asarray(array_)
    channels = 1 if arr.ndim == 2 else (arr.shape[2] if arr.ndim == 3 else -1)
    if arr.dtype != info.dtype or channels != info.channels:
        raise MessageConversionError(
            f"{arr.dtype} array of shape {arr.shape} does not fit encoding {encoding} "
            f"({info.dtype}, {info.channels} channel(s))")
    if encoding == "rgb8":
        return np.ascontiguousarray(array_)
    if encoding == "bgr8":
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_RGBA2RGB)
    if encoding == "bgra8":
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_BGRA2RGB)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_GRAY2RGB)
    if encoding in ("mono16", "16UC1"):
        return cv2.cvtColor((np.asarray(array_) >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    if encoding in ("rgb16", "bgr16", "rgba16", "bgra16"):
        eight = (np.asarray(array_) >> 8).astype(np.uint8)
        return to_rgb8(eight, encoding.replace("16", "8"))
    if encoding in UYVY_ENCODINGS:
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_YUV2RGB_UYVY)
    if encoding in YUYV_ENCODINGS:
        return cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_YUV2RGB_YUY2)
    raise MessageConversionError(f"encoding '{encoding}' is not a colour or mono image; cannot make RGB")


def image_to_rgb(msg: Image, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> np.ndarray:
    """Any supported colour/mono Image -> RGB uint8 (H, W, 3), contiguous.

    Raises MessageConversionError when the image exceeds ``limits`` (checked before any allocation),
    is malformed (see ``image_to_numpy``) or is not a colour/mono encoding (e.g. 32FC1, 8SC3).
    """
    limits.check_size(msg.width, msg.height, f"{msg.encoding} Image")
    return to_rgb8(image_to_numpy(msg), msg.encoding)
