"""Image <-> numpy: every encoding, padded steps, endianness, and malformed input."""
import array

import cv2
import numpy as np
import pytest

from da3_ros.ros_io import MessageConversionError, image_to_numpy, image_to_rgb, numpy_to_image

RNG = np.random.default_rng(0)

CASES = [
    ("rgb8", np.uint8, 3), ("bgr8", np.uint8, 3), ("rgba8", np.uint8, 4), ("bgra8", np.uint8, 4),
    ("mono8", np.uint8, 1), ("mono16", np.uint16, 1), ("16UC1", np.uint16, 1), ("32FC1", np.float32, 1),
    ("yuv422", np.uint8, 2), ("yuv422_yuy2", np.uint8, 2), ("uyvy", np.uint8, 2), ("yuyv", np.uint8, 2),
]


def _random(dtype, channels, h=37, w=50):
    shape = (h, w) if channels == 1 else (h, w, channels)
    if np.issubdtype(dtype, np.floating):
        return RNG.normal(size=shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("encoding,dtype,channels", CASES)
@pytest.mark.parametrize("padding", [0, 6])
@pytest.mark.parametrize("bigendian", [False, True])
def test_round_trip(encoding, dtype, channels, padding, bigendian):
    arr = _random(dtype, channels)
    msg = numpy_to_image(arr, encoding, row_padding=padding, is_bigendian=bigendian)
    itemsize = np.dtype(dtype).itemsize
    assert msg.step == 50 * channels * itemsize + padding
    assert len(msg.data) == msg.step * 37
    out = image_to_numpy(msg)
    assert out.dtype == dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_big_endian_bytes_are_really_swapped():
    arr = np.array([[0x0102, 0xA0B0]], dtype=np.uint16)
    msg = numpy_to_image(arr, "mono16", is_bigendian=True)
    assert bytes(msg.data) == b"\x01\x02\xa0\xb0"
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_native_decode_is_a_view_of_the_message_buffer():
    arr = _random(np.uint8, 3)
    msg = numpy_to_image(arr, "rgb8", row_padding=4)
    out = image_to_numpy(msg)
    assert not out.flags.owndata  # strided view into msg.data, no copy


@pytest.mark.parametrize("encoding,convert", [
    ("bgr8", cv2.COLOR_RGB2BGR), ("rgba8", cv2.COLOR_RGB2RGBA), ("bgra8", cv2.COLOR_RGB2BGRA)])
def test_image_to_rgb_colour(encoding, convert):
    rgb = _random(np.uint8, 3)
    msg = numpy_to_image(cv2.cvtColor(rgb, convert), encoding, row_padding=2)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_image_to_rgb_mono_and_yuv():
    gray = _random(np.uint8, 1)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(gray, "mono8")), np.repeat(gray[..., None], 3, -1))
    gray16 = _random(np.uint16, 1)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(gray16, "mono16"))[..., 0], gray16 >> 8)
    # a flat-grey UYVY image (U = V = 128, Y = 100) decodes to BT.601 video-range grey 1.164 * (100 - 16) = 98
    uyvy = np.zeros((4, 8, 2), np.uint8)
    uyvy[..., 0] = 128
    uyvy[..., 1] = 100
    rgb = image_to_rgb(numpy_to_image(uyvy, "yuv422"))
    assert rgb.shape == (4, 8, 3) and np.all(np.abs(rgb.astype(int) - 98) <= 1)
    yuyv = np.zeros((4, 8, 2), np.uint8)
    yuyv[..., 0] = 100
    yuyv[..., 1] = 128
    rgb = image_to_rgb(numpy_to_image(yuyv, "yuyv"))
    assert np.all(np.abs(rgb.astype(int) - 98) <= 1)


def test_unknown_encoding_is_rejected():
    msg = numpy_to_image(_random(np.uint8, 3), "rgb8")
    msg.encoding = "bayer_rggb42"
    with pytest.raises(MessageConversionError, match="unsupported image encoding 'bayer_rggb42'"):
        image_to_numpy(msg)


def test_truncated_data_is_rejected():
    msg = numpy_to_image(_random(np.uint8, 3, 480, 640), "rgb8")
    msg.data = array.array("B", bytes(msg.data)[:-600])
    with pytest.raises(MessageConversionError,
                       match=r"data size mismatch: step 1920 \* height 480 = 921600 bytes expected, got 921000"):
        image_to_numpy(msg)


def test_short_step_is_rejected():
    msg = numpy_to_image(_random(np.uint8, 3), "rgb8")
    msg.step = 100
    with pytest.raises(MessageConversionError, match="step 100 is smaller than one row of 50 px x 3 B = 150 B"):
        image_to_numpy(msg)


def test_empty_image_is_rejected():
    msg = numpy_to_image(_random(np.uint8, 3), "rgb8")
    msg.height = 0
    msg.data = array.array("B")
    with pytest.raises(MessageConversionError, match="empty image: 50x0"):
        image_to_numpy(msg)


def test_odd_step_for_16_bit_is_read_unaligned():
    arr = _random(np.uint16, 1)
    msg = numpy_to_image(arr, "mono16", row_padding=1)
    assert msg.step == 101
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_numpy_to_image_rejects_wrong_shapes_and_dtypes():
    with pytest.raises(MessageConversionError, match="does not fit encoding rgb8"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(MessageConversionError, match="dtype float64 does not fit encoding 32FC1"):
        numpy_to_image(np.zeros((4, 4)), "32FC1")


# -- hostile input: every case is a MessageConversionError raised before any large allocation -----------------
def test_every_hostile_image_is_a_conversion_error():
    from hostile_messages import hostile_images

    kinds = set()
    for kind, msg in hostile_images(np.random.default_rng(7), 300):
        with pytest.raises(MessageConversionError):
            image_to_rgb(msg)
        kinds.add(kind)
    assert len(kinds) == 16   # every kind was generated at least once


@pytest.mark.parametrize("width,height,message", [
    (4097, 3072, "image too large: 4097x3072 = 12585984 px exceeds the limit of 12582912 px"),
    (1, 4096, r"aspect ratio 4096.0:1 \(1x4096\) exceeds the limit of 8:1"),
    (33, 4, r"aspect ratio 8.2:1 \(33x4\) exceeds the limit of 8:1"),
])
def test_size_limits_are_checked_before_the_data(width, height, message):
    msg = numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8")
    msg.width, msg.height, msg.step = width, height, width * 3   # data (12 B) far too short: never looked at
    with pytest.raises(MessageConversionError, match=message):
        image_to_rgb(msg)


def test_largest_allowed_sizes_convert():
    from da3_ros.ros_io.input_limits import MAX_ASPECT_RATIO, MAX_INPUT_PIXELS, InputLimits

    assert image_to_rgb(numpy_to_image(np.zeros((4, 32, 3), np.uint8), "rgb8")).shape == (4, 32, 3)   # 8:1
    assert MAX_ASPECT_RATIO == 8.0 and MAX_INPUT_PIXELS == 4096 * 3072
    small = InputLimits(max_pixels=100)
    msg = numpy_to_image(np.zeros((10, 10, 3), np.uint8), "rgb8")
    assert image_to_rgb(msg, small).shape == (10, 10, 3)
    msg = numpy_to_image(np.zeros((10, 11, 3), np.uint8), "rgb8")
    with pytest.raises(MessageConversionError, match="exceeds the limit of 100 px"):
        image_to_rgb(msg, small)


def test_non_colour_encodings_are_rejected_by_image_to_rgb():
    for encoding, arr in [("32FC1", np.zeros((4, 4), np.float32)), ("8SC3", np.zeros((4, 4, 3), np.int8)),
                          ("8UC2", np.zeros((4, 4, 2), np.uint8)), ("64FC3", np.zeros((4, 4, 3)))]:
        with pytest.raises(MessageConversionError, match="not a colour or mono image"):
            image_to_rgb(numpy_to_image(arr, encoding))


def test_to_rgb8_rejects_an_array_that_does_not_fit_its_encoding():
    from da3_ros.ros_io import to_rgb8

    with pytest.raises(MessageConversionError, match="float32 array of shape .* does not fit encoding mono16"):
        to_rgb8(np.zeros((2, 2), np.float32), "mono16")
    with pytest.raises(MessageConversionError, match="does not fit encoding bgr8"):
        to_rgb8(np.zeros((2, 2, 2), np.uint8), "bgr8")
