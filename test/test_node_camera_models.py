"""da3_node over real DDS with a raw (distorted) camera (issue 19): a plumb_bob camera_info + raw image give
depth/camera_info in the rectified geometry (K = P, plumb_bob with D empty); an unknown distortion model and a
focal length that vanishes at network resolution are counted as bad_camera_info with their reasons (the node keeps
the last good camera_info); a camera that loses more than 5 % to the crop is a WARN naming the export that fits."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from builtin_interfaces.msg import Time

from node_fixtures import node_command, node_status, write_params
from ros_harness import RELIABLE

from da3_ros.ros_io import numpy_to_image
from da3_ros.synthetic.sequence import SyntheticSequence

pytestmark = pytest.mark.ros  # DDS test: da3_node as its own process over DDS

NS = "/da3"
FRAME = "camera_color_optical_frame"
W, H = 160, 120
K_RAW = [150.0, 0.0, 80.3, 0.0, 151.0, 59.4, 0.0, 0.0, 1.0]
P = [130.0, 0.0, 79.5, 0.0, 0.0, 130.0, 59.5, 0.0, 0.0, 0.0, 1.0, 0.0]


def _info(i: int, **fields) -> CameraInfo:
    msg = CameraInfo(header=Header(stamp=Time(sec=100 + i), frame_id=FRAME), width=W, height=H,
                     distortion_model="plumb_bob", d=[-0.3, 0.09, 0.001, -0.0005, 0.0], k=K_RAW,
                     r=np.eye(3).ravel().tolist(), p=P)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def test_raw_camera_is_rectified_and_bad_camera_info_counted(ros_node, process_launcher, tmp_path, reduced_onnx):
    ros = ros_node
    image_pub = ros.publisher(f"{NS}/image", Image, RELIABLE)
    info_pub = ros.publisher(f"{NS}/camera_info", CameraInfo, RELIABLE)
    depth_info = ros.subscribe(f"{NS}/depth/camera_info", CameraInfo)
    diags = ros.subscribe("/diagnostics", DiagnosticArray)
    params = write_params(tmp_path, backend="onnxruntime", model_file_path=str(reduced_onnx), window_size=3,
                          network_height=112, network_width=154, ref_view="first", num_threads=1, point_stride=4,
                          qos_reliability="reliable", qos_depth=10, diagnostics_period_s=0.3, image_rectified=False)
    proc = process_launcher.start(node_command(params, NS), name="da3_node")

    def alive():
        assert proc.poll() is None, process_launcher.log(proc)

    for pub in (image_pub, info_pub):
        ros.wait_for_subscribers(pub, 1, timeout=60)
    ros.wait_for_node_outputs(f"{NS}/da3_node", [f"{NS}/depth/camera_info"], check=alive)
    seq = SyntheticSequence(width=W, height=H)

    def status():
        return node_status(diags)

    def send(i: int, info=None, rgb=None):
        if info is not None:
            info_pub.publish(info)
            ros.spin_for(0.1)   # the camera_info is taken before the image
        rgb = seq.frame(i).rgb if rgb is None else rgb
        image_pub.publish(numpy_to_image(rgb, "rgb8", header=Header(stamp=Time(sec=100 + i), frame_id=FRAME)))

    def processed_at_least(n):
        ros.spin_until(lambda: status()[0] is not None and int(status()[0]["processed"]) >= n
                       and int(status()[0]["pending"]) == 0, 60, f"{n} frames processed")

    # a raw plumb_bob camera: published in the rectified geometry
    for i in range(3):
        send(i, _info(i))
        ros.spin_for(0.3)
    processed_at_least(3)
    ros.spin_until(lambda: len(depth_info) >= 3, 20, "depth/camera_info of every frame")
    alive()
    for msg in depth_info:
        assert (msg.width, msg.height, msg.header.frame_id) == (W, H, FRAME)
        assert msg.distortion_model == "plumb_bob" and list(msg.d) == []         # D empty: rectified
        np.testing.assert_array_equal(np.reshape(msg.k, (3, 3)), np.reshape(P, (3, 4))[:, :3])   # K = P
        np.testing.assert_array_equal(msg.p, P)
    values, _ = status()
    assert values["rectification"].startswith("plumb_bob -> P"), values
    assert values["intrinsics_source"] == "camera_info" and "bad_camera_info" not in values, values

    # an unknown model, then a focal length that is 0.000 at the network's 154 px: refused at input, counted
    send(3, _info(3, distortion_model="kannala_brandt", d=[0.1, 0.0, 0.0, 0.0]))
    ros.spin_until(lambda: int(status()[0].get("bad_camera_info", 0)) >= 1, 20, "the first bad_camera_info")
    assert "unknown_distortion_model" in status()[0]["last_error"], status()[0]
    send(4, _info(4, distortion_model="plumb_bob", d=[], k=[0.00101, 0, 79.5, 0, 150, 59.5, 0, 0, 1], p=[0.0] * 12))
    ros.spin_until(lambda: int(status()[0].get("bad_camera_info", 0)) >= 2, 20, "the second bad_camera_info")
    assert "bad_K_at_network" in status()[0]["last_error"], status()[0]
    processed_at_least(5)
    ros.spin_until(lambda: len(depth_info) >= 5, 20, "depth/camera_info of the frames after the bad ones")
    alive()
    for msg in depth_info[3:]:   # the last good camera_info stays in use
        np.testing.assert_array_equal(np.reshape(msg.k, (3, 3)), np.reshape(P, (3, 4))[:, :3])
    assert int(status()[0]["dropped_failed"]) == 0, status()[0]

    # a 16:9 image into the 112x154 network: 22.6 % cropped -> WARN naming the export that fits
    send(5, rgb=np.ascontiguousarray(SyntheticSequence(width=192, height=108).frame(5).rgb))
    processed_at_least(6)
    ros.spin_until(lambda: "crop_warning" in status()[0], 20, "the crop warning")
    values, st = status()
    assert "192x108 loses 22.6 %" in values["crop_warning"], values
    assert "da3-export onnx --camera-size 192x108 --long-side 154 (network input 84x154 HxW)" in values["crop_warning"]
    assert int(values["image_cropped"]) == 1
    # WARN; the message joins every warning, the crop warning among them (after a random-weights model's tracking
    # "lost" and the relative-unit warning, when those are shown)
    assert st.level == DiagnosticStatus.WARN and values["crop_warning"] in st.message.split("; "), st.message
    alive()
