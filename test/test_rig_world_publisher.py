"""The rig world publisher process over real DDS: per camera images + camera_info at its own rate and stamps, the
camera mounts latched on /tf_static, the ground-truth base odometry on /tf, and the oracle spec of its views."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from rig_world import T_wheel_base, build_rig_sequence, image_counts, published_views
from ros_harness import RELIABLE

from da3_ros.ros_io import image_to_numpy, stamp_to_ns
from da3_ros.ros_io.tf_listener import TfListener

pytestmark = pytest.mark.ros  # DDS test: the world publisher as its own process over DDS

HERE = Path(__file__).resolve().parent
W, H = 64, 48
FIRST, FRAMES = 3, 6
OFFSET_NS = 1000 * 1_000_000_000
JITTER_S = 0.003


def test_rig_world_publisher_sends_each_camera_at_its_rate(ros_node, process_launcher, tmp_path):
    spec = tmp_path / "oracle.json"
    names = ("left", "right")
    images = {n: ros_node.subscribe(f"/da3/{n}/image", Image, RELIABLE) for n in names}
    infos = {n: ros_node.subscribe(f"/da3/{n}/camera_info", CameraInfo, RELIABLE) for n in names}
    tf = TfListener(ros_node.node)
    proc = process_launcher.start_python(
        [str(HERE / "rig_world_publisher.py"), "--spec", str(spec), "--rig", "stereo", "--first-frame", str(FIRST),
         "--frames", str(FRAMES), "--width", str(W), "--height", str(H), "--rate-divisors", "1,2",
         "--stamp-jitter-s", str(JITTER_S), "--translation-noise", "0.0005", "--odometry-tf"], name="rig_world")
    ros_node.spin_until(lambda: "DONE" in process_launcher.log(proc) or proc.poll() is not None, 30, "DONE")
    ros_node.spin_for(0.5)   # the last messages and a few odometry samples
    log = process_launcher.log(proc)
    assert proc.poll() is None, log
    counts = json.loads(next(line for line in log.splitlines() if line.startswith("COUNTS "))[len("COUNTS "):])
    seq = build_rig_sequence("stereo", width=W, height=H, rate_divisors=(1, 2), stamp_jitter_s=JITTER_S)
    # frames 3..8: left publishes all 6, right (half rate) the even ones 4, 6, 8
    assert counts == image_counts(seq, FIRST, FRAMES) == {"left": 6, "right": 3}
    assert {n: len(images[n]) for n in names} == counts and {n: len(infos[n]) for n in names} == counts
    for c, n in enumerate(names):
        expected = [i for i, cameras in published_views(seq, FIRST, FRAMES) if c in cameras]
        assert len(expected) == counts[n]
        for msg, info, i in zip(images[n], infos[n], expected):
            assert msg.header.frame_id == info.header.frame_id == f"{n}_optical_frame"
            assert stamp_to_ns(msg.header.stamp) == stamp_to_ns(info.header.stamp) == OFFSET_NS + seq.stamp_ns(c, i)
            np.testing.assert_array_equal(image_to_numpy(msg), seq.render(c, i)[0])   # bit-exact: the oracle hashes it
            np.testing.assert_allclose(np.reshape(info.k, (3, 3)), seq.K[c])
        # float64 TF messages; 1e-6 m covers the quaternion round trip
        np.testing.assert_allclose(tf.lookup("base_link", f"{n}_optical_frame"), seq.rig.T_base_cam[c], atol=1e-6)
        assert tf.buffer.parent_of(f"{n}_optical_frame") == "base_link"
    # the jitter is there: left and right stamps of one rig pose differ
    assert stamp_to_ns(images["left"][1].header.stamp) != stamp_to_ns(images["right"][0].header.stamp)
    # ground-truth odometry relative to the first frame's base pose, interpolated at every image stamp (TF's linear
    # + slerp between 50 Hz samples of the same interpolation between 10 Hz path frames: identical up to rounding)
    assert tf.buffer.parent_of("base_link") == "wheel_odom"
    for c, n in enumerate(names):
        for msg in images[n]:
            t_ns = stamp_to_ns(msg.header.stamp) - OFFSET_NS
            np.testing.assert_allclose(tf.lookup("wheel_odom", "base_link", stamp_to_ns(msg.header.stamp)),
                                       T_wheel_base(seq, FIRST, t_ns), atol=1e-6)
    np.testing.assert_allclose(T_wheel_base(seq, FIRST, FIRST * 100_000_000), np.eye(4), atol=1e-12)  # 10 Hz path
    data = json.loads(spec.read_text())["oracle"]
    assert data["rig"]["preset"] == "stereo" and data["views"] == 4 and data["width"] == W
    assert data["noise"] == {"translation_noise": 0.0005}
    views = [seq.view_id(c, i) for i, cameras in published_views(seq, FIRST, FRAMES) for c in cameras]
    assert sorted(data["frames"].values()) == sorted(views)
    tf.destroy()


def test_rig_world_publisher_paces_on_complete_rig_groups(ros_node, process_launcher, tmp_path):
    """A 3-camera ring, cam2 at half rate. After a complete group the world waits for cam0's stamp on the pace
    topic (here: this test echoes cam0's camera_info, except frame 6's), else for the timeout; after an incomplete
    group it does not wait."""
    pace = ros_node.publisher("/da3/cam0/depth/camera_info", CameraInfo, RELIABLE)
    seq = build_rig_sequence("ring", num_cameras=3, width=W, height=H, rate_divisors=(1, 1, 2))
    arrivals = []   # (monotonic s, path frame) of every cam0 image

    def frame_of(msg) -> int:
        return round((stamp_to_ns(msg.header.stamp) - OFFSET_NS) / 100_000_000)   # no jitter: frame i at i / 10 Hz

    def on_cam0_info(msg):
        if frame_of(msg) != 6:
            pace.publish(msg)

    ros_node.node.create_subscription(CameraInfo, "/da3/cam0/camera_info", on_cam0_info, RELIABLE)
    ros_node.node.create_subscription(Image, "/da3/cam0/image", lambda m: arrivals.append((time.monotonic(),
                                                                                           frame_of(m))), RELIABLE)
    others = {n: ros_node.subscribe(f"/da3/{n}/image", Image, RELIABLE) for n in ("cam1", "cam2")}
    for n in ("cam1", "cam2"):   # the world waits for a subscriber on every camera_info topic too
        ros_node.subscribe(f"/da3/{n}/camera_info", CameraInfo, RELIABLE)
    proc = process_launcher.start_python(
        [str(HERE / "rig_world_publisher.py"), "--spec", str(tmp_path / "oracle.json"), "--rig", "ring",
         "--first-frame", str(FIRST), "--frames", str(FRAMES), "--width", str(W), "--height", str(H),
         "--rate-divisors", "1,1,2", "--pace-topic", "/da3/cam0/depth/camera_info", "--pace-timeout-s", "2.0"],
        name="rig_world")
    ros_node.spin_until(lambda: "DONE" in process_launcher.log(proc) or proc.poll() is not None, 30, "DONE")
    log = process_launcher.log(proc)
    assert proc.poll() is None, log
    ros_node.spin_for(0.2)
    assert "COUNTS " + json.dumps(image_counts(seq, FIRST, FRAMES)) in log
    assert image_counts(seq, FIRST, FRAMES) == {"cam0": 6, "cam1": 6, "cam2": 3}
    assert [i for _, i in arrivals] == list(range(FIRST, FIRST + FRAMES))
    assert [frame_of(m) for m in others["cam1"]] == list(range(FIRST, FIRST + FRAMES))
    assert [frame_of(m) for m in others["cam2"]] == [4, 6, 8]
    assert others["cam2"][0].header.frame_id == "cam2_optical_frame"
    np.testing.assert_array_equal(image_to_numpy(others["cam2"][0]), seq.render(2, 4)[0])
    gaps = {i: t1 - t0 for (t0, _), (t1, i) in zip(arrivals, arrivals[1:])}   # wait before frame i
    # frame 6 is a complete group nobody answers: the 2 s timeout (minus DDS latency jitter); every other wait is
    # an answered group or the ~0.05 s spin after an incomplete one (generous 1 s bound on a loaded 2-core machine)
    assert gaps[7] >= 1.8, gaps
    assert all(g < 1.0 for i, g in gaps.items() if i != 7), gaps
