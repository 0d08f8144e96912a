"""camera_info -> the camera of the image (issue 19): a raw image's RawCamera, a rectified image's P; what the
network-resolution camera check refuses is refused at input; the crop warning names the export that fits."""
from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from da3_ros.artifact.network_size import network_size_for_camera
from da3_ros.camera_models import RawCamera
from da3_ros.geometry.camera import InvalidCameraError, PinholeCamera
from da3_ros.pipeline.camera_stream import CROP_WARNING_FRACTION, CameraFrame, CameraStream
from da3_ros.pipeline.network_input import NetworkInputMapping
from da3_ros.ros_io.camera_info import BadCameraInfoError, camera_info_to_camera, intrinsics_to_camera_info

K = [500.0, 0.0, 322.0, 0.0, 502.0, 241.0, 0.0, 0.0, 1.0]
P = [480.0, 0.0, 319.5, 0.0, 0.0, 480.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]


def _info(**fields) -> CameraInfo:
    msg = CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=[-0.3, 0.09, 0.001, -0.0005, 0.0], k=K,
                     r=np.eye(3).ravel().tolist(), p=P)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def test_raw_camera_info_gives_the_raw_camera_and_a_rectified_one_gives_P():
    raw = camera_info_to_camera(_info(), image_rectified=False)
    assert isinstance(raw, RawCamera) and raw.distortion_model == "plumb_bob" and raw.has_distortion
    np.testing.assert_array_equal(raw.K.ravel(), K)
    np.testing.assert_array_equal(raw.rectified_camera.K, np.reshape(P, (3, 4))[:, :3])
    # image_proc's image_rect: its camera is P, D does not apply (even an unknown model is irrelevant then)
    for msg in (_info(), _info(distortion_model="kannala_brandt", d=[0.1] * 7)):
        rect = camera_info_to_camera(msg, image_rectified=True)
        assert isinstance(rect, PinholeCamera) and not rect.is_distorted
        np.testing.assert_array_equal(rect.K, np.reshape(P, (3, 4))[:, :3])
    # an uncalibrated driver leaves P zero: P = [K | 0]
    np.testing.assert_array_equal(camera_info_to_camera(_info(p=[0.0] * 12), image_rectified=True).K.ravel(), K)


@pytest.mark.parametrize("fields,reason,match", [
    (dict(distortion_model="kannala_brandt"), "unknown_distortion_model", "'kannala_brandt' is not supported"),
    (dict(distortion_model="", d=[0.1, 0.0, 0.0, 0.0, 0.0]), "unknown_distortion_model", "no distortion model"),
    (dict(distortion_model="equidistant"), "distortion_length", "equidistant needs 4 coefficients in D, got 5"),
    (dict(d=[0.0, float("nan"), 0.0, 0.0, 0.0]), "non_finite", "D contains NaN"),
    (dict(r=[2.0] + [0.0] * 8), "bad_R", "R is not a rotation"),
    (dict(binning_x=2), "binning", "binning 2x0"),
])
def test_a_raw_camera_info_that_cannot_be_rectified_is_refused_with_its_reason(fields, reason, match):
    with pytest.raises(BadCameraInfoError, match=match) as err:
        camera_info_to_camera(_info(**fields), image_rectified=False)
    assert err.value.reason == reason


def test_what_the_network_resolution_camera_check_refuses_is_refused_at_input():
    # fx = 0.001 px is accepted at 640 px (MIN_FOCAL_PX) but is 0.0008 px at the 504 px wide network input:
    # processing (NetworkInputMapping.camera_to_network, every frame) refuses it, so the input check does too
    tiny = [0.001, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
    msg = _info(distortion_model="plumb_bob", d=[], k=tiny, p=[0.0] * 12)
    camera = camera_info_to_camera(msg)                          # without a network size: valid
    with pytest.raises(InvalidCameraError, match="out-of-range focal length"):
        NetworkInputMapping(640, 480, 504, 378).camera_to_network(camera.rectified_camera)
    with pytest.raises(BadCameraInfoError, match=r"unusable at the network input 504x378 \(WxH\).*focal length "
                                                 r"fx=0\.000787") as err:
        camera_info_to_camera(msg, network_wh=(504, 378))
    assert err.value.reason == "bad_K_at_network"
    for image_rectified in (False, True):   # the rectified camera (P) is the one checked, in both modes
        with pytest.raises(BadCameraInfoError, match="bad_K_at_network|unusable at the network"):
            camera_info_to_camera(_info(p=[0.001] + P[1:]), image_rectified=image_rectified, network_wh=(504, 378))
    # a real camera passes at the network size
    assert isinstance(camera_info_to_camera(_info(), network_wh=(504, 378)), RawCamera)


def test_depth_camera_info_is_plumb_bob_with_D_empty():
    # image_geometry reads an empty distortion model as "unknown"; plumb_bob with D empty is "no distortion"
    msg = intrinsics_to_camera_info(PinholeCamera(640, 480, np.reshape(P, (3, 4))[:, :3]))
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == []
    assert list(msg.p) == P and list(msg.k) == [480.0, 0.0, 319.5, 0.0, 480.0, 239.5, 0.0, 0.0, 1.0]


def test_crop_warning_names_the_export_that_fits():
    # the README's old 280x504 export with a 640x480 camera: 25.9 % cropped, rows 0-61 and 418-479 unseen
    stream = CameraStream((504, 280))
    events = []
    stream.update_size(640, 480, events)
    assert stream.mapping.cropped_fraction == pytest.approx(1 - 280 / 378)
    assert stream.mapping.cropped_fraction > CROP_WARNING_FRACTION
    assert network_size_for_camera(640, 480, 504) == (378, 504)
    assert [e.name for e in events] == ["image_cropped"]
    warning = stream.describe("")["crop_warning"]
    assert warning == events[0].message
    assert "640x480 loses 25.9 % of its pixels" in warning and "network input 280x504 (HxW" in warning
    assert "only rows 62-417 are seen" in warning
    assert "da3-export onnx --camera-size 640x480 --long-side 504 (network input 378x504 HxW)" in warning
    stream.update_size(640, 480, events)            # the same size again: nothing new (logged once)
    assert len(events) == 1
    # the export that fits crops nothing: no warning
    fitting = CameraStream((504, 378))
    events = []
    fitting.update_size(640, 480, events)
    assert events == [] and "crop_warning" not in fitting.describe("")
    # 1280x720 into that export: 1.6 % of the columns, under the 5 % rule
    wide = CameraStream((504, 280))
    wide.update_size(1280, 720, events)
    assert 0 < wide.mapping.cropped_fraction < CROP_WARNING_FRACTION and events == []


def test_stream_rectifies_a_raw_frame_and_passes_a_pinhole_one():
    stream = CameraStream((640, 480))
    raw = camera_info_to_camera(_info())
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out = stream.rectify(CameraFrame(rgb, 1, raw))
    assert isinstance(out.camera, PinholeCamera) and out.camera == raw.rectified_camera
    assert out.rgb.shape == rgb.shape and not np.array_equal(out.rgb, rgb)
    assert stream.rectification.startswith("plumb_bob -> P") and stream.rectifier.builds == 1
    stream.rectify(CameraFrame(rgb, 2, camera_info_to_camera(_info())))   # the same numbers: cached maps
    assert stream.rectifier.builds == 1
    pinhole = PinholeCamera(640, 480, np.reshape(K, (3, 3)))
    same = CameraFrame(rgb, 3, pinhole)
    assert stream.rectify(same) is same
    small = CameraFrame(rgb[::2, ::2].copy(), 4, raw)   # a camera_info of another size: left to the size check
    assert stream.rectify(small) is small and stream.rectification == "none (camera_info size mismatch)"
