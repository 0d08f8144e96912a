"""Seeded hostile (and unusual but valid) camera messages for the conversion and fuzz tests.

Every builder returns ROS messages (no rclpy needed). ``hostile_images`` / ``hostile_compressed`` /
``hostile_camera_infos`` yield ``(kind, message)`` pairs that the node must reject as bad input
(images) or ignore (camera_info); ``unusual_compressed`` yields valid payloads that must be processed.
Payloads are crafted by hand (PNG chunks, JPEG segments) or by OpenCV's encoders; all are small.
"""
from __future__ import annotations

import array
import struct
import zlib

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, RegionOfInterest
from std_msgs.msg import Header

from da3_ros.ros_io import numpy_to_compressed, numpy_to_image
from da3_ros.ros_io.input_limits import MAX_INPUT_PIXELS


def png_bytes(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, raw: bytes | None = None) -> bytes:
    """A PNG with the given IHDR; ``raw`` is the filtered scanline data (default: zero rows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if raw is None:
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 3)
        row = b"\0" + bytes((width * channels * bit_depth + 7) // 8)
        compressor = zlib.compressobj(9)
        raw_z = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        raw_z = zlib.compress(raw)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw_z) + chunk(b"IEND", b"")


def jpeg_with_sof(precision: int = 8, width: int = 16, height: int = 16, components: int = 3) -> bytes:
    """SOI + a baseline SOF0 segment with the given fields + EOI (no scan: header probing only)."""
    comps = b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    sof = struct.pack(">BHHB", precision, height, width, components) + comps
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def compressed(data: bytes, fmt: str, header: Header | None = None) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    if header is not None:
        msg.header = header
    msg.data = array.array("B", data)
    return msg


def _encoded(ext: str, arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, arr)
    assert ok, ext
    return buf.tobytes()


def smooth_rgb(height: int = 120, width: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (height + width)], -1).astype(np.uint8)


_PAYLOADS: dict[str, bytes] = {}


def _cached(kind: str, build) -> bytes:
    """Fixed payloads are deterministic; build each once per process (the 4096x4096 PNG takes 0.2 s)."""
    if kind not in _PAYLOADS:
        _PAYLOADS[kind] = build()
    return _PAYLOADS[kind]


def hostile_compressed(rng: np.random.Generator, count: int, header: Header | None = None):
    """``count`` seeded (kind, CompressedImage) pairs, each of which must be rejected as bad input."""
    good_jpeg = numpy_to_compressed(smooth_rgb(), "rgb8", "jpeg").data.tobytes()
    good_png = numpy_to_compressed(smooth_rgb(), "rgb8", "png").data.tobytes()
    fixed = {
        "pfm_as_png": lambda: _encoded(".pfm", np.zeros((1, 1, 3), np.float32)),
        "tiff_int16": lambda: _encoded(".tiff", np.zeros((1, 1), np.int16)),
        "tiff_float64": lambda: _encoded(".tiff", np.zeros((1, 1), np.float64)),
        "bmp": lambda: _encoded(".bmp", np.zeros((2, 2, 3), np.uint8)),
        "webp": lambda: _encoded(".webp", np.zeros((2, 2, 3), np.uint8)),
        "ppm": lambda: _encoded(".ppm", np.zeros((2, 2, 3), np.uint8)),
        "hdr": lambda: _encoded(".hdr", np.zeros((2, 2, 3), np.float32)),
        "png_32768x32769": lambda: png_bytes(32768, 32769, 8, 0, raw=b""),
        "png_zeros_4096x4096": lambda: png_bytes(4096, 4096, 8, 2),
        "png_aspect_4096x4": lambda: png_bytes(4096, 4, 8, 2),
        "png_1x4096": lambda: png_bytes(1, 4096, 8, 2),
        "png_zero_width": lambda: png_bytes(0, 16, 8, 2, raw=b""),
        "png_bad_colour_type": lambda: png_bytes(16, 16, 8, 5, raw=b""),
        "png_bad_bit_depth": lambda: png_bytes(16, 16, 3, 2, raw=b""),
        "png_header_only": lambda: png_bytes(64, 64, 8, 2)[:33],
        "png_signature_only": lambda: b"\x89PNG\r\n\x1a\n",
        "jpeg_12bit": lambda: jpeg_with_sof(precision=12),
        "jpeg_2_components": lambda: jpeg_with_sof(components=2),
        "jpeg_huge_sof": lambda: jpeg_with_sof(width=65535, height=65535),
        "jpeg_zero_height": lambda: jpeg_with_sof(height=0),
        "jpeg_sof_no_scan": lambda: jpeg_with_sof(),
        "jpeg_soi_only": lambda: b"\xff\xd8",
        "jpeg_bad_segment_length": lambda: b"\xff\xd8\xff\xe0\x00\x01" + bytes(20),
        "jpeg_many_tiny_segments": lambda: b"\xff\xd8" + b"\xff\xfe\x00\x02" * 250_000 + jpeg_with_sof()[2:],
    }
    random_kinds = ("random_bytes", "png_signature_random", "jpeg_soi_random", "truncated_jpeg", "truncated_png",
                    "corrupted_png_crc", "wrong_format_string", "empty")
    kinds = list(fixed) + list(random_kinds)
    for i in range(count):
        kind = kinds[i] if i < len(kinds) else kinds[int(rng.integers(len(kinds)))]
        fmt = str(rng.choice(["png", "jpeg", "rgb8; png compressed bgr8", "bgr8; jpeg compressed bgr8"]))
        if kind in fixed:
            data = _cached(kind, fixed[kind])
        elif kind == "random_bytes":
            data = rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
        elif kind == "png_signature_random":
            data = b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, int(rng.integers(0, 512)), dtype=np.uint8).tobytes()
        elif kind == "jpeg_soi_random":
            data = b"\xff\xd8" + rng.integers(0, 256, int(rng.integers(0, 512)), dtype=np.uint8).tobytes()
        elif kind == "truncated_jpeg":
            data = good_jpeg[:int(rng.integers(2, 600))]   # ends before the first scan: no image at all
        elif kind == "truncated_png":
            data = good_png[:int(rng.integers(8, len(good_png) - 12))]   # IEND and part of IDAT missing
        elif kind == "corrupted_png_crc":
            buf = bytearray(good_png)
            buf[int(rng.integers(40, len(buf) - 12))] ^= 0xFF
            data = bytes(buf)
        elif kind == "wrong_format_string":
            data, fmt = good_jpeg, str(rng.choice(["theora", "rgb8", "", "h264", "tiff"]))
        else:
            data = b""
        yield kind, compressed(data, fmt, header)


def unusual_compressed(header: Header | None = None):
    """(kind, CompressedImage) pairs that are valid and must be processed (not rejected)."""
    rgb = smooth_rgb()
    mono16 = (rgb[:, :, 0].astype(np.uint16) * 257)
    rgba16 = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1).astype(np.uint16) * 257
    grey_alpha = np.stack([rgb[:, :, 1], np.full(rgb.shape[:2], 255, np.uint8)], -1)
    raw_la = b"".join(b"\0" + row.tobytes() for row in grey_alpha)
    yield "png_mono16", numpy_to_compressed(mono16, "mono16", "png", header=header)
    yield "png_rgba16", compressed(_encoded(".png", rgba16), "png", header)
    yield "png_grey_alpha", compressed(png_bytes(rgb.shape[1], rgb.shape[0], 8, 4, raw=raw_la), "png", header)
    yield "png_bgra8", numpy_to_compressed(np.ascontiguousarray(rgba16 >> 8).astype(np.uint8), "bgra8", "png",
                                           header=header)
    yield "jpeg_mono", numpy_to_compressed(rgb[:, :, 0].copy(), "mono8", "jpeg", header=header)
    yield "png_labelled_jpeg", compressed(numpy_to_compressed(rgb, "rgb8", "png").data.tobytes(), "jpeg", header)


def max_size_png(header: Header | None = None) -> CompressedImage:
    """A PNG of zeros at the largest accepted size (4096x3072 RGB, ~40 kB)."""
    assert 4096 * 3072 == MAX_INPUT_PIXELS
    return compressed(png_bytes(4096, 3072, 8, 2), "png", header)


#: kind -> ``mutate(rng, msg, header) -> Image``: turns a valid 24x32 rgb8 ``msg`` into bad input of that kind
#: (in place, or a new message); the order is the order ``hostile_images`` yields the kinds first
HOSTILE_IMAGE_KINDS: dict = {}


def _hostile_kind(kind: str):
    def register(mutate):
        HOSTILE_IMAGE_KINDS[kind] = mutate
        return mutate
    return register


@_hostile_kind("unknown_encoding")
def _unknown_encoding(rng, msg, header):
    msg.encoding = str(rng.choice(["bayer_rggb8", "bayer_unknown16", "nv12", "RGB8", "", "jpeg", "8UC5"]))
    return msg


@_hostile_kind("float_encoding")
def _float_encoding(rng, msg, header):
    enc = str(rng.choice(["32FC1", "32FC3", "64FC1", "64FC3"]))
    arr = rng.random((24, 32, int(enc[-1]))).astype(np.float32 if enc.startswith("32") else np.float64)
    return numpy_to_image(arr if arr.shape[2] > 1 else arr[:, :, 0], enc, header=header)


@_hostile_kind("signed_encoding")
def _signed_encoding(rng, msg, header):
    enc = str(rng.choice(["8SC1", "8SC3", "16SC1", "32SC1"]))
    dtype = {"8S": np.int8, "16S": np.int16, "32S": np.int32}[enc[:-2]]
    arr = rng.integers(-100, 100, (24, 32, int(enc[-1]))).astype(dtype)
    return numpy_to_image(arr if arr.shape[2] > 1 else arr[:, :, 0], enc, header=header)


@_hostile_kind("two_channel_cv")
def _two_channel_cv(rng, msg, header):
    return numpy_to_image(rng.integers(0, 255, (24, 32, 2), dtype=np.uint8), "8UC2", header=header)


@_hostile_kind("truncated")
def _truncated(rng, msg, header):
    msg.data = array.array("B", msg.data.tobytes()[:-int(rng.integers(1, len(msg.data)))])
    return msg


@_hostile_kind("extra_data")
def _extra_data(rng, msg, header):
    msg.data = array.array("B", msg.data.tobytes() + bytes(int(rng.integers(1, 100))))
    return msg


@_hostile_kind("short_step")
def _short_step(rng, msg, header):
    msg.step = int(rng.integers(0, msg.width * 3))
    return msg


@_hostile_kind("wrong_step")
def _wrong_step(rng, msg, header):
    msg.step = msg.step + int(rng.integers(1, 50))
    return msg


@_hostile_kind("zero_width")
def _zero_width(rng, msg, header):
    msg.width, msg.step, msg.data = 0, 0, array.array("B")
    return msg


@_hostile_kind("zero_height")
def _zero_height(rng, msg, header):
    msg.height, msg.data = 0, array.array("B")
    return msg


@_hostile_kind("huge_declared")
def _huge_declared(rng, msg, header):
    msg.width, msg.height = int(rng.integers(10_000, 2**32)), int(rng.integers(10_000, 2**32))
    msg.step = min(msg.width * 3, 2**32 - 1)
    return msg


@_hostile_kind("over_limit")
def _over_limit(rng, msg, header):
    """Just above the pixel limit, correct step, tiny data."""
    msg.width, msg.height = 4097, 3072
    msg.step = msg.width * 3
    return msg


@_hostile_kind("aspect_1x4096")
def _aspect_1x4096(rng, msg, header):
    """A valid 12 kB image whose cover resize would allocate gigabytes."""
    return numpy_to_image(np.zeros((4096, 1, 3), np.uint8), "rgb8", header=header)


@_hostile_kind("aspect_4096x1")
def _aspect_4096x1(rng, msg, header):
    return numpy_to_image(np.zeros((1, 4096, 3), np.uint8), "rgb8", header=header)


@_hostile_kind("odd_width_yuv")
def _odd_width_yuv(rng, msg, header):
    return numpy_to_image(np.zeros((4, 5, 2), np.uint8), "yuv422", header=header)


@_hostile_kind("random_fields")
def _random_fields(rng, msg, header):
    """Arbitrary width/height/step/encoding with random data."""
    msg.encoding = str(rng.choice(["rgb8", "bgr8", "mono8", "mono16", "rgba16", "yuyv", "8UC3"]))
    msg.width, msg.height = int(rng.integers(0, 70_000)), int(rng.integers(0, 70_000))
    msg.step = int(rng.integers(0, 2**32))
    msg.is_bigendian = int(rng.integers(0, 2))
    msg.data = array.array("B", rng.integers(0, 256, int(rng.integers(0, 2048)), dtype=np.uint8).tobytes())
    return msg


def hostile_images(rng: np.random.Generator, count: int, header: Header | None = None):
    """``count`` seeded (kind, Image) pairs, each of which must be rejected as bad input.

    The first ones are every kind of ``HOSTILE_IMAGE_KINDS`` once, in order; the rest are drawn from ``rng``.
    """
    rgb = smooth_rgb(24, 32)
    kinds = tuple(HOSTILE_IMAGE_KINDS)
    for i in range(count):
        kind = kinds[i] if i < len(kinds) else kinds[int(rng.integers(len(kinds)))]
        msg = numpy_to_image(rgb, "rgb8", header=header)
        yield kind, HOSTILE_IMAGE_KINDS[kind](rng, msg, header)


def camera_info(width: int, height: int, K: np.ndarray, header: Header | None = None) -> CameraInfo:
    """A monocular CameraInfo (no distortion, R = I, P = [K | 0]) built field by field."""
    msg = CameraInfo(width=int(width), height=int(height))
    if header is not None:
        msg.header = header
    K = np.asarray(K, dtype=np.float64)
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = np.hstack([K, np.zeros((3, 1))]).ravel().tolist()
    return msg


def hostile_camera_infos(rng: np.random.Generator, width: int, height: int, K: np.ndarray,
                         header: Header | None = None):
    """(kind, CameraInfo) pairs the node must ignore (keeping the last valid camera_info) or, for a valid
    camera_info of another size than the images, answer with the model's intrinsics."""
    def info(**fields) -> CameraInfo:
        msg = camera_info(width, height, K, header)
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    def k_with(index: int, value: float) -> list[float]:
        k = np.asarray(K, float).ravel().tolist()
        k[index] = value
        return k

    nan, inf = float("nan"), float("inf")
    yield "k_nan", info(k=[nan] * 9)
    yield "p_nan", info(p=[nan] * 12)
    yield "k_inf", info(k=k_with(0, inf))
    yield "fx_1e39", info(k=k_with(0, 1.2e39))
    yield "cx_1e39", info(k=k_with(2, 1.2e39))
    yield "fy_3e38", info(k=k_with(4, 3.5e38))
    yield "k_zero", info(k=[0.0] * 9)
    yield "fx_negative", info(k=k_with(0, -float(K[0, 0])))
    yield "fy_tiny", info(k=k_with(4, 1e-300))
    yield "k22_zero", info(k=k_with(8, 0.0))
    yield "d_nan", info(distortion_model="plumb_bob", d=[0.1, nan, 0.0, 0.0, 0.0])
    yield "d_huge", info(distortion_model="plumb_bob", d=[1e39, 0.0, 0.0, 0.0, 0.0])
    yield "d_wrong_size", info(distortion_model="plumb_bob", d=[0.01] * 3)
    yield "d_very_long", info(distortion_model="rational_polynomial", d=rng.normal(0, 1e-3, 1000).tolist())
    yield "unknown_model", info(distortion_model="fisheye_unknown", d=[0.01, 0.0, 0.0, 0.0])
    yield "zero_size", info(width=0, height=0)
    yield "huge_size", info(width=2**32 - 1, height=2**32 - 1)
    yield "mismatched_size", info(width=width * 2 + 1, height=height + 3)
    yield "binning", info(binning_x=4, binning_y=4)
    yield "roi", info(roi=RegionOfInterest(x_offset=3, y_offset=2, width=10, height=10))
