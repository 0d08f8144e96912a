"""What one input image message may cost: documented limits checked before any allocation or decoding.

A camera message is untrusted input. A 12-byte ``Image`` can declare 1x4096 pixels, whose
aspect-preserving *cover* resize to a 504x280 network allocates gigabytes; a 23 kB PNG of zeros can
declare 4096x4096 pixels. The node therefore rejects, as bad input and before decoding, every image
that exceeds these limits (the raw ``Image`` width/height, the PNG ``IHDR`` or JPEG ``SOFn`` header
of a ``CompressedImage``):

``MAX_INPUT_PIXELS = 4096 * 3072`` (12.6 MP)
    Covers every common robot and 12-MP camera (4000x3000, 4032x3024, 4056x3040, 3840x2160 4K UHD)
    while bounding the per-frame memory. At this size one frame costs about 38 MB as RGB uint8,
    50 MB per float32 output image at camera resolution (depth, confidence), plus the DDS samples
    of those outputs; see README "Input limits and memory" for the measured node peak.
``MAX_ASPECT_RATIO = 8.0`` (long side / short side)
    Wider than any camera or stitched 360-degree panorama in practice (32:9 = 3.6, equirectangular
    2:1). It bounds the cover resize: the resized image is at most ``8 * net_long_side ** 2`` pixels
    (2 MP, 6 MB, for a 504-wide network) whatever the input size.
``MAX_COMPRESSED_BYTES = 64 MiB``
    More than the raw bytes of the largest 8-bit RGBA image allowed (50 MB), so every legitimate
    JPEG/PNG of an allowed size fits; a bigger payload is rejected without decoding.

Only PNG and JPEG payloads are decoded (identified by their signature, not by the ``format``
string); the decoded array must be uint8 or uint16 with 1, 3 or 4 channels and the size its header
declared. This module is ROS-free.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import MessageConversionError

#: Largest image accepted, in pixels (width * height): 4096 x 3072 = 12.6 MP.
MAX_INPUT_PIXELS = 4096 * 3072
#: Largest accepted ratio of the long image side to the short one.
MAX_ASPECT_RATIO = 8.0
#: Largest accepted CompressedImage payload, in bytes.
MAX_COMPRESSED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """Limits on one input image (see the module docstring for the defaults and why)."""

    max_pixels: int = MAX_INPUT_PIXELS
    max_aspect_ratio: float = MAX_ASPECT_RATIO
    max_compressed_bytes: int = MAX_COMPRESSED_BYTES

    def check_size(self, width: int, height: int, what: str) -> None:
        """Raise MessageConversionError unless a ``width`` x ``height`` image of ``what`` is allowed."""
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise MessageConversionError(f"empty image: {width}x{height} ({what})")
        if width * height > self.max_pixels:
            raise MessageConversionError(
                f"image too large: {width}x{height} = {width * height} px exceeds the limit of {self.max_pixels} px "
                f"({what})")
        aspect = max(width, height) / min(width, height)
        if aspect > self.max_aspect_ratio:
            raise MessageConversionError(
                f"image aspect ratio {aspect:.1f}:1 ({width}x{height}) exceeds the limit of "
                f"{self.max_aspect_ratio:g}:1 ({what})")

    def check_compressed_bytes(self, nbytes: int, what: str) -> None:
        """Raise MessageConversionError when a compressed payload of ``nbytes`` is too big to decode."""
        if nbytes > self.max_compressed_bytes:
            raise MessageConversionError(
                f"CompressedImage payload of {nbytes} bytes exceeds the limit of {self.max_compressed_bytes} bytes "
                f"({what})")


#: The limits the node applies.
DEFAULT_INPUT_LIMITS = InputLimits()
