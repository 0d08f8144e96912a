"""Camera sequences the demo player can publish: the synthetic room (default, with ground truth),
a video file, a folder of images, or a rosbag2 (MCAP/sqlite3) with an image topic."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np


@dataclass
class DemoFrame:
    index: int                        # index in the source (ground-truth lookup)
    rgb: np.ndarray                   # (h, w, 3) uint8
    K: Optional[np.ndarray] = None    # camera_info intrinsics (None: publish no camera_info)
    T_world_cam: Optional[np.ndarray] = None
    depth: Optional[np.ndarray] = None  # ground-truth metric depth


@dataclass
class DemoInput:
    name: str
    frames: list
    has_ground_truth: bool
    description: str


def synthetic_input(frames: int = 100, stride: int = 3, width: int = 320, height: int = 240,
                    camera_path: str = "room_tour", seed: int = 0, progress=None) -> DemoInput:
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
