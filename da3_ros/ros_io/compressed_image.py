"""sensor_msgs/CompressedImage (jpeg/png) <-> numpy.

``format`` follows compressed_image_transport: ``"<orig encoding>; <jpeg|png> compressed <encoding>"``
(e.g. ``"rgb8; jpeg compressed bgr8"``); a bare ``"jpeg"``/``"png"`` is accepted too. Colour images
are stored by OpenCV in BGR order, so the decoded colour array is BGR and ``compressed_to_rgb``
converts it.

Hostile payloads are rejected with MessageConversionError before decoding (see ``input_limits``):
the payload must be a PNG or JPEG by its signature (OpenCV would otherwise decode TIFF, PFM, BMP,
WebP, ... into float or odd-channel arrays), and the size declared by its PNG ``IHDR`` / JPEG ``SOFn``
header must pass the pixel-count and aspect-ratio limits. After decoding, only uint8/uint16 arrays
with 1, 3 or 4 channels of the declared size are accepted.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage

from .errors import MessageConversionError
from .image_conversion import _buffer_bytes, new_uint8_buffer, set_uint8_data, to_rgb8
from .input_limits import DEFAULT_INPUT_LIMITS, InputLimits

_FORMATS = ("jpeg", "jpg", "png")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
#: JPEG start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15; not DHT C4, JPG C8, DAC CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field (TEM, RST0-7, SOI).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
#: PNG colour types -> channels (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA) and their allowed bit depths.
#: Most JPEG markers (and fill bytes) scanned for the frame header: real files have < 50 before it (APPn, DQT,
#: DHT, COM); the cap keeps a hostile stream of tiny segments from costing seconds of Python.
_JPEG_MAX_MARKERS = 1000
_PNG_COLOUR_TYPES = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _codec_of(fmt: str) -> str:
    low = fmt.lower()
    for codec in _FORMATS:
        if codec in low:
            return "png" if codec == "png" else "jpeg"
    raise MessageConversionError(f"unsupported CompressedImage format '{fmt}' (expected jpeg or png)")


def _png_size(data) -> tuple[int, int]:
    """(width, height) from the IHDR chunk that must follow the PNG signature."""
    if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        raise MessageConversionError(f"PNG payload of {len(data)} bytes has no valid IHDR header (truncated?)")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_COLOUR_TYPES or depth not in _PNG_COLOUR_TYPES[colour]:
        raise MessageConversionError(f"PNG has an invalid bit depth {depth} / colour type {colour}")
    return width, height


def _jpeg_size(data) -> tuple[int, int]:
    """(width, height) from the first JPEG start-of-frame segment (8-bit precision only)."""
    pos, end = 2, len(data)
    for _ in range(_JPEG_MAX_MARKERS):
        if pos + 4 > end:
            break
        if data[pos] != 0xFF:
            raise MessageConversionError(f"JPEG payload is corrupt: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:       # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break                # end of image / start of scan before any frame header
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if length < 2:
            raise MessageConversionError(f"JPEG payload is corrupt: segment length {length} at byte {pos}")
        if marker in _JPEG_SOF:
            if pos + 10 > end:
                break
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            if precision != 8:
                raise MessageConversionError(f"JPEG with {precision}-bit samples is not supported (8-bit only)")
            if components not in (1, 3, 4):
                raise MessageConversionError(f"JPEG with {components} components is not supported")
            return width, height
        pos += 2 + length
    else:
        raise MessageConversionError(f"JPEG payload has no frame header in its first {_JPEG_MAX_MARKERS} markers")
    raise MessageConversionError(f"JPEG payload of {end} bytes has no frame header (truncated or corrupt?)")


def compressed_size(data) -> tuple[str, int, int]:
    """(codec, width, height) declared by a PNG or JPEG payload's header, without decoding it.

    Raises MessageConversionError for any other container (TIFF, PFM, BMP, WebP, random bytes...).
    """
    if data[:8] == _PNG_SIGNATURE:
        return ("png", *_png_size(data))
    if data[:2] == _JPEG_SOI:
        return ("jpeg", *_jpeg_size(data))
    raise MessageConversionError(
        f"CompressedImage payload is neither PNG nor JPEG (starts with {bytes(data[:8])!r})")


def compressed_to_numpy(msg: CompressedImage, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> tuple[np.ndarray, str]:
    """Decode -> (array, encoding) where encoding is bgr8, bgra8, mono8 or mono16.

    The payload's header is checked against ``limits`` before decoding; raises
    MessageConversionError for anything that is not a PNG/JPEG of an allowed size and kind.
    """
    _codec_of(msg.format)
    view = _buffer_bytes(msg.data)
    if view.nbytes == 0:
        raise MessageConversionError(f"empty CompressedImage ({msg.format})")
    limits.check_compressed_bytes(view.nbytes, msg.format)
    try:
        codec, width, height = compressed_size(view)
    except MessageConversionError as exc:
        raise MessageConversionError(
            f"CompressedImage could not be decoded ('{msg.format}', {view.nbytes} bytes): {exc}") from None
    what = f"{codec} header of a '{msg.format}' CompressedImage"
    limits.check_size(width, height, what)
    buf = np.frombuffer(view, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:   # OpenCV's own validation (a last line of defence)
        raise MessageConversionError(f"CompressedImage could not be decoded as {codec}: {exc}") from None
    if decoded is None:
        raise MessageConversionError(
            f"CompressedImage could not be decoded as {msg.format} ({buf.size} bytes; truncated or corrupt?)")
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    if decoded.dtype not in (np.uint8, np.uint16) or channels not in (1, 3, 4) \
            or decoded.shape[0] * decoded.shape[1] != width * height:
        raise MessageConversionError(
            f"CompressedImage decoded to an unsupported {decoded.dtype} array of shape {decoded.shape} "
            f"({what} declares {width}x{height}); expected uint8/uint16 with 1, 3 or 4 channels")
    if decoded.ndim == 2:
        return decoded, ("mono16" if decoded.dtype == np.uint16 else "mono8")
    if decoded.dtype != np.uint8:
        decoded = (decoded >> 8).astype(np.uint8)
    return decoded, ("bgra8" if channels == 4 else "bgr8")


def compressed_to_rgb(msg: CompressedImage, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> np.ndarray:
    """Decode to RGB uint8 (H, W, 3) (limits as in ``compressed_to_numpy``)."""
    arr, encoding = compressed_to_numpy(msg, limits)
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
