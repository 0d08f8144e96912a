"""Seeded fuzz of da3_node over real DDS with hostile Image / CompressedImage / CameraInfo / stamp input.

The node runs as its own process (entry point + --params-file, ONNX Runtime backend on a reduced DA3
export); this test process publishes bursts of hostile messages (test/hostile_messages.py, fixed
seeds) interleaved with good frames, one message at a time (the next is sent once /diagnostics has
accounted for the previous one, so none is lost as "busy" and every one reaches the conversion code).

After every burst: the node is alive, a good frame still gets its depth, /diagnostics counts every
hostile image as ``dropped_bad_input`` and none as ``dropped_failed``. The node's peak RSS (VmHWM of
/proc/<pid>/status) is checked against the documented bounds (README "Input limits and memory"):
hostile messages are rejected before decoding, so they must not raise the peak by more than
HOSTILE_RSS_BOUND_MB; one frame at the largest accepted size (MAX_INPUT_PIXELS) may cost at most
MAX_FRAME_RSS_BOUND_MB.
"""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from hostile_messages import (camera_info, hostile_camera_infos, hostile_compressed, hostile_images, max_size_png,
                              smooth_rgb, unusual_compressed)
from node_fixtures import node_command, write_params
from ros_harness import RELIABLE

from da3_ros.ros_io import image_to_numpy, numpy_to_compressed, numpy_to_image

pytestmark = pytest.mark.ros  # DDS test: da3_node as its own process over DDS

NS = "/da3_fuzz"
CAMERA_FRAME = "camera_color_optical_frame"
#: Peak-RSS growth allowed for all hostile bursts together (MB). Every hostile message is rejected before
#: decoding, so only small buffers (<= 12 kB images, <= 64 kB payloads) and Python/DDS noise remain; the
#: measured growth is < 10 MB, the bound leaves room for allocator and DDS pool variation across machines.
HOSTILE_RSS_BOUND_MB = 60.0
#: Peak-RSS growth allowed for one frame at MAX_INPUT_PIXELS (4096x3072), in MB (README "Input limits and
#: memory"): measured 360-410 MB (decode, RGB, resize, depth/confidence at camera resolution, points, their
#: DDS samples); the bound leaves 1.7x for allocator and DDS pool differences between machines.
MAX_FRAME_RSS_BOUND_MB = 700.0


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of process ``pid`` in MB (VmHWM, Linux)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc status")


class NodeUnderFuzz:
    """The node process plus this test's publishers, subscriptions and the count of images sent."""

    def __init__(self, ros, launcher, tmp_path, onnx_path, transport: str):
        self.ros, self.launcher = ros, launcher
        self.image_type = CompressedImage if transport == "compressed" else Image
        topic = f"{NS}/image/compressed" if transport == "compressed" else f"{NS}/image"
        self.image_pub = ros.publisher(topic, self.image_type, RELIABLE)
        self.info_pub = ros.publisher(f"{NS}/camera_info", CameraInfo, RELIABLE)
        self.depth_info = ros.subscribe(f"{NS}/depth/camera_info", CameraInfo)
        self.depth = ros.subscribe(f"{NS}/depth", Image) if transport == "raw" else None
        self.diags = ros.subscribe("/diagnostics", DiagnosticArray)
        params = dict(backend="onnxruntime", model_file_path=str(onnx_path), window_size=3, network_height=112,
                      network_width=154, ref_view="first", num_threads=1, point_stride=4,
                      qos_reliability="reliable", qos_depth=10, diagnostics_period_s=0.02,
                      image_transport=transport, publish_map_points=False)
        self.proc = launcher.start(node_command(write_params(tmp_path, **params), NS), name="da3_node")
        ros.wait_for_subscribers(self.image_pub, 1, timeout=60)
        ros.wait_for_subscribers(self.info_pub, 1, timeout=60)
        # the node builds depth and depth/camera_info only for a matched subscriber: ours, on its side
        ros.wait_for_node_outputs(f"{NS}/da3_node", check=self.check_alive)
        self.sent = 0
        self.bad_sent = 0
        self.context = ""   # what was sent last, for failure messages

    def log(self) -> str:
        return self.launcher.log(self.proc)[-4000:]

    def check_alive(self) -> None:
        assert self.proc.poll() is None, self.log()

    def values(self) -> dict:
        for msg in reversed(self.diags):
            for status in msg.status:
                if "da3_node" in status.name:
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def _accounted(self) -> bool:
        v = self.values()
        return bool(v) and int(v["received"]) == self.sent and int(v["pending"]) == 0

    def send(self, msg, bad: bool) -> None:
        """Publish one image and wait until /diagnostics accounted for it (processed or dropped)."""
        self.sent += 1
        self.bad_sent += int(bad)
        self.image_pub.publish(msg)
        self.ros.spin_until(lambda: self._accounted() or self.proc.poll() is not None, 60,
                            f"image {self.sent} accounted for")
        assert self.proc.poll() is None, self.log()

    def good(self, msg, size: tuple[int, int]) -> None:
        """Publish a good image and wait for its depth (depth/camera_info, published with it)."""
        before = len(self.depth_info)
        self.send(msg, bad=False)
        v = self.values()
        assert int(v["processed"]) == self.sent - self.bad_sent, \
            f"good image {self.sent} ({self.context}) was dropped: {v.get('last_error')}\n{self.log()}"
        self.ros.spin_until(lambda: len(self.depth_info) > before, 60, f"depth of good image {self.sent}")
        info = self.depth_info[-1]
        assert (info.width, info.height) == size
        assert (info.header.stamp.sec, info.header.stamp.nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)

    def check_counts(self, burst: str) -> None:
        v = self.values()
        assert int(v["dropped_failed"]) == 0, f"after {burst}: {v.get('last_error')}\n{self.log()}"
        assert int(v["dropped_bad_input"]) == self.bad_sent, f"after {burst}: {v}"
        assert int(v["dropped_busy"]) == 0 and int(v["dropped_rate"]) == 0, v
        assert int(v["processed"]) == self.sent - self.bad_sent, v


def _header(i: int, frame_id: str = CAMERA_FRAME, sec: int | None = None, nanosec: int | None = None) -> Header:
    return Header(stamp=Time(sec=1000 + i if sec is None else sec,
                             nanosec=(i * 7919) % 1_000_000_000 if nanosec is None else nanosec), frame_id=frame_id)


def _camera_info(width: int, height: int, header: Header) -> CameraInfo:
    f = 0.8 * width
    return camera_info(width, height, np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]]),
                       header)


def test_fuzz_raw_images_camera_info_and_stamps(ros_node, process_launcher, tmp_path, reduced_onnx):
    node = NodeUnderFuzz(ros_node, process_launcher, tmp_path, reduced_onnx, "raw")
    rng = np.random.default_rng(20261201)
    i = 0

    def good(width=160, height=120, frame_id=CAMERA_FRAME, sec=None, info=True, nanosec=None):
        nonlocal i
        i += 1
        header = _header(i, frame_id, sec, nanosec)
        if info:
            node.info_pub.publish(_camera_info(width, height, header))
        node.good(numpy_to_image(smooth_rgb(height, width), "rgb8", header=header), (width, height))
        depth = node.depth[-1] if node.depth else None
        if depth is not None and (depth.width, depth.height) == (width, height):
            assert np.isfinite(image_to_numpy(depth)).any()

    good()
    good()
    baseline_mb = _vm_hwm_mb(node.proc.pid)

    # burst 1: 160 hostile Images (every kind, then a seeded mix)
    for _, msg in hostile_images(rng, 160, _header(i)):
        node.send(msg, bad=True)
    good()
    node.check_counts("hostile images")

    # burst 2: stamps going back / jumping forward / zero / repeated, frame_id and resolution changes
    good(sec=10)                                   # stamp goes back by ~1000 s (bag loop)
    good(sec=10_000_000)                           # jumps forward by 115 days
    good(sec=0)                                    # zero stamp (back again)
    good(sec=0)                                    # the same stamp twice
    good(sec=-1)                                   # negative stamp (int32 sec)
    good(sec=2**31 - 1, nanosec=2**32 - 1)         # largest stamp, nanosec out of range (> 1 s)
    good(frame_id="other_camera_frame")            # frame_id changes
    good(frame_id="")                              # empty frame_id
    good(320, 240)                                 # resolution changes between good frames ...
    good(64, 48)
    good(256, 32)                                  # ... to the largest accepted aspect ratio (8:1)
    good(32, 256)
    good(160, 120, info=False)                     # camera_info of another size is the latest one
    good()
    node.check_counts("stamp and resolution changes")

    # burst 3: hostile camera_info, each followed by a good frame (processed with the last valid camera_info)
    K = np.array([[128.0, 0, 79.5], [0, 128.0, 59.5], [0, 0, 1]])
    for kind, info in hostile_camera_infos(rng, 160, 120, K, _header(i)):
        node.context = f"after camera_info {kind}"
        node.info_pub.publish(info)
        ros_node.spin_for(0.05)   # the camera_info subscription is served before the image's
        good(info=False)
    node.check_counts("hostile camera_info")

    # burst 4: another seeded mix of hostile Images
    for _, msg in hostile_images(rng, 100, _header(i)):
        node.send(msg, bad=True)
    good()
    node.check_counts("second hostile image burst")
    growth = _vm_hwm_mb(node.proc.pid) - baseline_mb
    assert growth < HOSTILE_RSS_BOUND_MB, f"peak RSS grew by {growth:.0f} MB"
    print(f"raw fuzz: {node.sent} images ({node.bad_sent} hostile), peak RSS {baseline_mb:.0f} MB "
          f"+ {growth:.1f} MB")


def test_fuzz_compressed_images(ros_node, process_launcher, tmp_path, reduced_onnx):
    node = NodeUnderFuzz(ros_node, process_launcher, tmp_path, reduced_onnx, "compressed")
    rng = np.random.default_rng(1201)
    i = 0

    def good_jpeg():
        nonlocal i
        i += 1
        node.good(numpy_to_compressed(smooth_rgb(), "rgb8", "jpeg", header=_header(i)), (160, 120))

    good_jpeg()
    good_jpeg()
    baseline_mb = _vm_hwm_mb(node.proc.pid)

    # burst 1: 200 hostile payloads (every kind, then a seeded mix)
    for _, msg in hostile_compressed(rng, 200, _header(i)):
        node.send(msg, bad=True)
    good_jpeg()
    node.check_counts("hostile compressed images")

    # burst 2: unusual but valid payloads (16-bit, grey+alpha, BGRA, mono JPEG, PNG labelled jpeg) are processed
    for _, msg in unusual_compressed():
        i += 1
        msg.header = _header(i)
        node.good(msg, (160, 120))
    node.check_counts("unusual valid compressed images")
    hostile_growth = _vm_hwm_mb(node.proc.pid) - baseline_mb
    assert hostile_growth < HOSTILE_RSS_BOUND_MB, f"peak RSS grew by {hostile_growth:.0f} MB"

    # burst 3: a frame at the largest accepted size (a 40 kB PNG of zeros, 4096x3072), then more hostile input
    i += 1
    node.good(max_size_png(_header(i)), (4096, 3072))
    max_frame_growth = _vm_hwm_mb(node.proc.pid) - baseline_mb
    for _, msg in hostile_compressed(rng, 60, _header(i)):
        node.send(msg, bad=True)
    good_jpeg()
    node.check_counts("hostile burst after the largest frame")
    assert max_frame_growth < MAX_FRAME_RSS_BOUND_MB, f"peak RSS grew by {max_frame_growth:.0f} MB"
    print(f"compressed fuzz: {node.sent} images ({node.bad_sent} hostile), peak RSS {baseline_mb:.0f} MB "
          f"+ {hostile_growth:.1f} MB after hostile bursts, + {max_frame_growth:.0f} MB after one 4096x3072 frame")


def test_fastdds_dynamic_memory_profile_is_loaded_without_errors(tmp_path):
    """config/fastdds_dynamic_memory.xml parses (an invalid profile, the control, is reported by Fast DDS)."""
    import os
    import subprocess
    import sys

    from node_fixtures import REPO

    script = ("import rclpy; from std_msgs.msg import String; rclpy.init(); n = rclpy.create_node('profile_check'); "
              "n.create_publisher(String, 'profile_check', 10); n.create_subscription(String, 'profile_check', "
              "print, 10); print('created')")
    bad = tmp_path / "bad.xml"
    bad.write_text('<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"><profiles>'
                   '<data_writer profile_name="w" is_default_profile="true"><historyMemoryPolicy>NOT_A_POLICY'
                   '</historyMemoryPolicy></data_writer></profiles></dds>')
    outputs = {}
    for name, path in (("shipped", REPO / "config" / "fastdds_dynamic_memory.xml"), ("control", bad)):
        env = dict(os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(path), RMW_FASTRTPS_USE_QOS_FROM_XML="1",
                   RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        outputs[name] = run.stdout + run.stderr
        assert run.returncode == 0 and "created" in run.stdout, outputs[name]
    assert "Error parsing" in outputs["control"], outputs["control"]
    assert "XMLPARSER" not in outputs["shipped"] and "Error" not in outputs["shipped"], outputs["shipped"]
