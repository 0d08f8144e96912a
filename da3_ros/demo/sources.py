"""Camera sequences the demo player can publish: the synthetic robot in the room (default, with ground
truth, its camera mount and wheel odometry for /tf), the old synthetic ``room_tour`` camera, a video file,
a folder of images, or a rosbag2 (MCAP/sqlite3) with an image topic."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np


@dataclass
class DemoFrame:
    index: int                        # index in the source (ground-truth lookup)
    rgb: np.ndarray                   # (h, w, 3) uint8
    K: Optional[np.ndarray] = None    # camera_info intrinsics (None: publish no camera_info)
    T_world_cam: Optional[np.ndarray] = None
    depth: Optional[np.ndarray] = None  # ground-truth metric depth
    stamp_s: Optional[float] = None   # robot input: image stamp, seconds from the sequence start
    T_odom_base: Optional[np.ndarray] = None   # robot input: ground-truth base_link pose in the room's odom
    # robot input: wheel odometry samples (stamp_s, T_odomwheel_base) to publish on /tf before this image
    odometry: List[Tuple[float, np.ndarray]] = field(default_factory=list)


@dataclass
class RobotTf:
    """What the player publishes on TF for a robot input (frame names of ``synthetic.robot``)."""

    static_transforms: list          # (parent, child, T_parent_child): base_link -> camera_link -> optical
    odometry_frame: str              # parent of the wheel odometry edge (wheel_odom)
    base_frame: str                  # base_link
    camera_frame: str                # the images' frame_id (the optical frame)
    fps: float                       # the robot camera's image rate (the oracle spec needs it)


@dataclass
class DemoInput:
    name: str
    frames: list
    has_ground_truth: bool
    description: str
    robot: Optional[RobotTf] = None   # set: the player publishes /tf_static + wheel odometry, stamps = stamp_s


#: how far (s of stamp time) the wheel odometry published with an image reaches past its stamp: one
#: image period of the robot's 10 Hz camera, so a lookup at the image stamp never needs a later sample
ODOMETRY_LEAD_S = 0.1


def synthetic_input(frames: int = 100, stride: int = 3, width: int = 320, height: int = 240,
                    camera_path: str = "robot_tour", seed: int = 0, progress=None) -> DemoInput:
    """``robot_tour`` (default): the camera of ``SyntheticRobot`` (ground truth T_odom_base, mount, 50 Hz
    wheel odometry); any other name: that camera path of ``SyntheticSequence`` (camera only)."""
    if camera_path == "robot_tour":
        return robot_input(frames, stride, width, height, seed, progress)
    from ..synthetic.sequence import SyntheticSequence

    seq = SyntheticSequence(camera_path, width=width, height=height, seed=seed)
    indices = list(range(0, len(seq), max(1, stride)))[:frames]
    out = []
    for i in indices:
        rgb, depth = seq.render(i)
        out.append(DemoFrame(i, rgb, seq.K.copy(), seq.T_world_cam[i].copy(), depth))
        if progress:
            progress()
    return DemoInput("synthetic", out, True,
                     f"synthetic room '{camera_path}' {width}x{height}, frames {indices[0]}..{indices[-1]} "
                     f"(every {stride}), ground truth depth and poses")


def robot_input(frames: int = 100, stride: int = 3, width: int = 320, height: int = 240, seed: int = 0,
                progress=None) -> DemoInput:
    """The synthetic robot's camera (``SyntheticRobot().sequence``) with per-frame stamps, ground-truth
    base poses and the wheel odometry samples up to ``ODOMETRY_LEAD_S`` past each image stamp."""
    from ..synthetic.robot import BASE_FRAME, CAMERA_OPTICAL_FRAME, WHEEL_ODOM_FRAME, SyntheticRobot

    robot = SyntheticRobot()
    seq = robot.sequence(width, height, seed=seed)
    stamps = robot.camera_stamps
    wheel = robot.wheel_odometry
    T_wheel = wheel.T_odomwheel_base
    indices = list(range(0, len(seq), max(1, stride)))[:frames]
    T_truth = robot.T_odom_base(stamps[indices])
    out, next_sample = [], 0
    for k, i in enumerate(indices):
        rgb, depth = seq.render(i)
        t = float(stamps[i])
        samples = []
        while next_sample < len(wheel) and wheel.stamps[next_sample] <= t + ODOMETRY_LEAD_S + 1e-9:
            samples.append((float(wheel.stamps[next_sample]), T_wheel[next_sample]))
            next_sample += 1
        out.append(DemoFrame(i, rgb, seq.K.copy(), seq.T_world_cam[i].copy(), depth, stamp_s=t,
                             T_odom_base=T_truth[k], odometry=samples))
        if progress:
            progress()
    tf = RobotTf(robot.static_transforms, WHEEL_ODOM_FRAME, BASE_FRAME, CAMERA_OPTICAL_FRAME, robot.fps)
    return DemoInput("synthetic", out, True,
                     f"synthetic robot 'robot_tour' {width}x{height}, frames {indices[0]}..{indices[-1]} "
                     f"(every {stride}, {stamps[indices[0]]:.1f}..{stamps[indices[-1]]:.1f} s), ground truth depth "
                     f"and base poses; /tf_static {BASE_FRAME} -> camera_link -> {CAMERA_OPTICAL_FRAME}, wheel "
                     f"odometry {WHEEL_ODOM_FRAME} -> {BASE_FRAME} at {wheel.config.rate_hz:.0f} Hz", robot=tf)


def video_input(path: str, frames: int = 100, stride: int = 1) -> DemoInput:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    out, i = [], 0
    while len(out) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % max(1, stride) == 0:
            out.append(DemoFrame(i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        i += 1
    cap.release()
    if not out:
        raise ValueError(f"no frames could be decoded from {path}")
    return DemoInput("video", out, False, f"video {path}: {len(out)} frames (every {stride}), no camera_info")


def images_input(directory: str, frames: int = 100, stride: int = 1) -> DemoInput:
    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    files = files[::max(1, stride)][:frames]
    if not files:
        raise FileNotFoundError(f"no .png/.jpg images in {directory}")
    out = []
    size = None
    for i, f in enumerate(files):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {f}")
        if size is None:
            size = bgr.shape[:2]
        elif bgr.shape[:2] != size:
            bgr = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        out.append(DemoFrame(i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return DemoInput("images", out, False, f"{len(out)} images from {directory}, no camera_info")


def bag_input(path: str, frames: int = 100, stride: int = 1, topic: str = "") -> DemoInput:
    """The first sensor_msgs/Image or CompressedImage topic of a rosbag2 (+ its camera_info)."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from ..ros_io import camera_info_to_intrinsics, compressed_to_rgb, image_to_rgb

    types = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
    out, K = [], None
    with Reader(path) as reader:
        image_conns = [c for c in reader.connections if c.msgtype in types and (not topic or c.topic == topic)]
        if not image_conns:
            raise ValueError(f"{path} has no sensor_msgs/Image or CompressedImage topic {topic}")
        conn = image_conns[0]
        info_conns = [c for c in reader.connections if c.msgtype == "sensor_msgs/msg/CameraInfo"]
        count = 0
        for c, _, raw in reader.messages(connections=[conn, *info_conns]):
            if c.msgtype == "sensor_msgs/msg/CameraInfo":
                if K is None:
                    try:
                        K = camera_info_to_intrinsics(deserialize_message(raw, CameraInfo)).K
                    except ValueError:
                        pass
                continue
            if count % max(1, stride) == 0:
                msg = deserialize_message(raw, types[c.msgtype])
                rgb = compressed_to_rgb(msg) if c.msgtype.endswith("CompressedImage") else image_to_rgb(msg)
                out.append(DemoFrame(count, rgb))
            count += 1
            if len(out) >= frames:
                break
    for f in out:
        f.K = K
    return DemoInput("bag", out, False, f"{len(out)} frames of {conn.topic} from {path}")
