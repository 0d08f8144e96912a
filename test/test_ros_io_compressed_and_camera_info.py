"""CompressedImage and CameraInfo conversions."""
import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from da3_ros.geometry.camera import PinholeCamera
from da3_ros.ros_io import (MessageConversionError, camera_info_to_intrinsics, compressed_to_numpy,
                            compressed_to_rgb, intrinsics_to_camera_info, numpy_to_compressed)


def _smooth_rgb(h=120, w=160):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], -1).astype(np.uint8)


def test_png_round_trip_is_lossless():
    rgb = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    msg = numpy_to_compressed(rgb, "rgb8", "png")
    assert msg.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
    mono16 = np.random.default_rng(2).integers(0, 65536, (30, 40), dtype=np.uint16)
    arr, enc = compressed_to_numpy(numpy_to_compressed(mono16, "mono16", "png"))
    assert enc == "mono16"
    np.testing.assert_array_equal(arr, mono16)


def test_jpeg_round_trip_is_close():
    rgb = _smooth_rgb()
    out = compressed_to_rgb(numpy_to_compressed(rgb, "rgb8", "jpeg", quality=95))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 2.0


def test_corrupt_and_unknown_compressed_are_rejected():
    msg = numpy_to_compressed(_smooth_rgb(), "rgb8", "jpeg")
    msg.data = array.array("B", bytes(msg.data)[:40])
    with pytest.raises(MessageConversionError, match="could not be decoded"):
        compressed_to_rgb(msg)
    msg.format = "theora"
    with pytest.raises(MessageConversionError, match="unsupported CompressedImage format 'theora'"):
        compressed_to_rgb(msg)
    msg.format = "jpeg"
    msg.data = array.array("B")
    with pytest.raises(MessageConversionError, match="empty CompressedImage"):
        compressed_to_rgb(msg)


def test_camera_info_round_trip():
    intr = PinholeCamera(640, 480, np.array([[525.0, 0, 319.5], [0, 526.0, 239.5], [0, 0, 1]]),
                         "plumb_bob", np.array([0.1, -0.2, 0.001, 0.002, 0.0]))
    msg = intrinsics_to_camera_info(intr)
    assert list(msg.p) == [525.0, 0, 319.5, 0, 0, 526.0, 239.5, 0, 0, 0, 1, 0]
    back = camera_info_to_intrinsics(msg)
    assert (back.width, back.height, back.distortion_model) == (640, 480, "plumb_bob")
    np.testing.assert_array_equal(back.K, intr.K)
    np.testing.assert_array_equal(back.distortion, intr.distortion)
    assert back.is_distorted


def test_intrinsics_scaling_uses_pixel_edges():
    intr = PinholeCamera.from_focal(640, 480, 500.0, 500.0, 319.5, 239.5)
    half = intr.resized(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 250.0, 159.5, 119.5)


def test_camera_info_keeps_its_convention_and_equals_the_da3_camera():
    # camera_info and PinholeCamera share the pixel-centre convention: K is copied unchanged, and the
    # same camera given as DA3 intrinsics (principal point + 0.5) converts to an identical camera
    msg = intrinsics_to_camera_info(PinholeCamera.from_focal(640, 480, 500.0, 505.0, 319.5, 239.5))
    cam = camera_info_to_intrinsics(msg)
    np.testing.assert_array_equal(cam.K.ravel(), msg.k)
    K_da3 = np.array([[500.0, 0, 320.0], [0, 505.0, 240.0], [0, 0, 1]])
    assert PinholeCamera.from_da3_intrinsics(K_da3, 640, 480) == cam


@pytest.mark.parametrize("field,value,message", [
    ("k", [0.0] * 9, "non-positive focal length"),
    ("k", [float("nan")] + [0.0] * 8, "K contains NaN"),
    ("d", [float("inf")], "D contains NaN"),
    ("width", 0, "zero image size 0x480"),
    # finite in float64 but inf in float32 (every frame would fail while it is the latest camera_info)
    ("k", [1.2e39, 0, 319.5, 0, 500, 239.5, 0, 0, 1],
     r"CameraInfo K has out-of-range focal length fx=1\.2e\+39 fy=500\.0 \(accepted for 640x480: "
     r"0\.001\.\.6\.4e\+08 px\)"),
    ("k", [500, 0, 319.5, 0, 500, 3e9, 0, 0, 1], r"out-of-range principal point or skew cx=319\.5 cy=3000000000\.0"),
    ("k", [500, 0, 319.5, 0, float("nan"), 239.5, 0, 0, 1], r"K contains NaN/Inf: \[500\.0, 0\.0, 319\.5, 0\.0, nan"),
    ("k", [500, 0, 319.5, 0, -500, 239.5, 0, 0, 1], "non-positive focal length fx=500.0 fy=-500.0"),
    ("k", [500, 0, 319.5, 0, 500, 239.5, 0, 0, 0], "not a pinhole matrix"),
    ("width", 200_000, "image size 200000x480 is outside 1..100000 px"),
])
def test_bad_camera_info_is_rejected(field, value, message):
    msg = intrinsics_to_camera_info(PinholeCamera.from_focal(640, 480, 500, 500, 320, 240))
    setattr(msg, field, value)
    with pytest.raises(MessageConversionError, match=message):
        camera_info_to_intrinsics(msg)


def test_default_camera_info_is_rejected():
    with pytest.raises(MessageConversionError, match="zero image size"):
        camera_info_to_intrinsics(CameraInfo())


# -- hostile CompressedImage payloads -------------------------------------------------------------------------
def test_every_hostile_compressed_image_is_a_conversion_error():
    from hostile_messages import hostile_compressed

    kinds = set()
    for kind, msg in hostile_compressed(np.random.default_rng(11), 200):
        with pytest.raises(MessageConversionError):
            compressed_to_rgb(msg)
        kinds.add(kind)
    assert len(kinds) == 32   # every kind was generated at least once


@pytest.mark.parametrize("kind,message", [
    ("pfm_as_png", r"neither PNG nor JPEG \(starts with b'PF\\n1 1\\n-'\)"),
    ("tiff_int16", "neither PNG nor JPEG"),
    ("png_32768x32769", "image too large: 32768x32769 = 1073774592 px"),
    ("png_zeros_4096x4096", "image too large: 4096x4096"),
    ("png_1x4096", r"aspect ratio 4096.0:1"),
    ("jpeg_12bit", "12-bit samples"),
    ("jpeg_zero_height", "empty image: 16x0"),
    ("png_bad_colour_type", "colour type 5"),
    ("jpeg_many_tiny_segments", "no frame header in its first 1000 markers"),
])
def test_hostile_compressed_reasons(kind, message):
    from hostile_messages import hostile_compressed

    msgs = dict(hostile_compressed(np.random.default_rng(0), 32))
    with pytest.raises(MessageConversionError, match=message):
        compressed_to_rgb(msgs[kind])


def test_unusual_but_valid_compressed_images_decode_to_rgb8():
    from hostile_messages import max_size_png, unusual_compressed

    for kind, msg in unusual_compressed():
        rgb = compressed_to_rgb(msg)
        assert (rgb.shape, rgb.dtype) == ((120, 160, 3), np.uint8), kind
        assert rgb.max() > 0, kind
    rgb = compressed_to_rgb(max_size_png())
    assert rgb.shape == (3072, 4096, 3) and not rgb.any()


@pytest.mark.parametrize("width,height", [(1, 1), (17, 5), (640, 480), (4000, 500)])
@pytest.mark.parametrize("ext,params", [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])])
def test_header_probe_reads_the_encoded_size(width, height, ext, params):
    from da3_ros.ros_io.compressed_image import compressed_size

    ok, buf = cv2.imencode(ext, np.zeros((height, width, 3), np.uint8), params)
    codec, w, h = compressed_size(memoryview(buf.tobytes()))
    assert (codec, w, h) == ("png" if ext == ".png" else "jpeg", width, height)


def test_oversized_payload_is_rejected_before_decoding():
    from da3_ros.ros_io.input_limits import InputLimits

    msg = numpy_to_compressed(_smooth_rgb(), "rgb8", "png")
    with pytest.raises(MessageConversionError, match=r"payload of \d+ bytes exceeds the limit of 1000 bytes"):
        compressed_to_rgb(msg, InputLimits(max_compressed_bytes=1000))
