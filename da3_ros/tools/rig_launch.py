"""Camera-rig launch arguments -> node parameters and remappings (used by launch/da3.launch.py; ROS-free).

A rig node subscribes ``<cam>/image`` (``<cam>/image/compressed``) and ``<cam>/camera_info`` relative to its
namespace for every camera of its ``cameras`` parameter. Drivers rarely publish exactly there, so the launch
argument ``camera_topics`` maps each camera to its driver's image topic::

    camera_topics:="left:=/stereo/left/image_raw, right:=/stereo/right/image_raw"

remaps ``left/image`` -> ``/stereo/left/image_raw``, ``left/image/compressed`` ->
``/stereo/left/image_raw/compressed`` and ``left/camera_info`` -> ``/stereo/left/camera_info``: the
camera_info topic is the image topic's sibling, image_transport's ``CameraSubscriber`` rule (the last name
of the image topic replaced by ``camera_info``). Cameras without an entry keep ``<namespace>/<cam>/image``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

#: one camera namespace: ROS name tokens (letter or underscore first) joined by "/", relative
CAMERA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
#: a topic name: absolute or relative, ROS name tokens joined by "/" ("~" private names are not topics here)
TOPIC_NAME = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def parse_cameras(text: str) -> List[str]:
    """``"[left, right]"``, ``"left,right"``, ``"left right"`` or ``"['cam0', 'cam1']"`` -> ``["left", "right"]``.

    Empty text (or ``[]``) -> ``[]``. Raises ValueError naming the bad entry for a name that is not a relative
    ROS namespace or for a camera listed twice.
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    names = [item.strip().strip("'\"").strip() for item in re.split(r"[,\s]+", body)]
    names = [name for name in names if name]
    for name in names:
        if not CAMERA_NAME.fullmatch(name):
            raise ValueError(f"cameras: '{name}' is not a relative ROS namespace (letters, digits, '_', '/'; "
                             f"no leading '/' or digit), in '{text}'")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"cameras: {', '.join(duplicates)} listed twice in '{text}'")
    return names


def parse_camera_topics(text: str) -> Dict[str, str]:
    """``"left:=/stereo/left/image_raw, right:=/stereo/right/image_raw"`` -> ``{camera: image topic}``.

    Entries are separated by commas (or whitespace); order is kept. Raises ValueError for an entry without
    ``:=``, a bad camera or topic name, or a camera given twice.
    """
    topics: Dict[str, str] = {}
    for entry in (e.strip() for e in re.split(r"[,\s]+", text.strip())):
        if not entry:
            continue
        camera, sep, topic = entry.partition(":=")
        camera, topic = camera.strip(), topic.strip()
        if not sep or not camera or not topic:
            raise ValueError(f"camera_topics: '{entry}' is not CAMERA:=IMAGE_TOPIC (e.g. left:=/stereo/left/image_raw)")
        if not CAMERA_NAME.fullmatch(camera):
            raise ValueError(f"camera_topics: '{camera}' is not a relative ROS namespace")
        if not TOPIC_NAME.fullmatch(topic):
            raise ValueError(f"camera_topics: '{topic}' (camera {camera}) is not a valid topic name")
        if camera in topics:
            raise ValueError(f"camera_topics: camera '{camera}' given twice")
        topics[camera] = topic
    return topics


def camera_info_topic(image_topic: str) -> str:
    """The camera_info topic beside an image topic (image_transport's rule): ``/a/b/image_raw`` ->
    ``/a/b/camera_info``; ``image`` -> ``camera_info``."""
    head, _, _ = image_topic.rstrip("/").rpartition("/")
    if not head and image_topic.startswith("/"):
        return "/camera_info"
    return f"{head}/camera_info" if head else "camera_info"


def rig_remappings(cameras: Sequence[str], camera_topics: Mapping[str, str]) -> List[Tuple[str, str]]:
    """Remappings of the node's relative per-camera inputs to the drivers' topics, for every camera of
    ``camera_topics`` (all of which must be in ``cameras``)."""
    unknown = [camera for camera in camera_topics if camera not in cameras]
    if unknown:
        raise ValueError(f"camera_topics names {', '.join(unknown)}, not in cameras [{', '.join(cameras)}]")
    remaps: List[Tuple[str, str]] = []
    for camera in cameras:
        if camera in camera_topics:
            topic = camera_topics[camera]
            remaps += [(f"{camera}/image", topic), (f"{camera}/image/compressed", f"{topic}/compressed"),
                       (f"{camera}/camera_info", camera_info_topic(topic))]
    return remaps


def resolve_rig(cameras_text: str, camera_topics_text: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """The launch arguments ``cameras`` and ``camera_topics`` -> (cameras, remappings).

    ``cameras`` empty and ``camera_topics`` given: the cameras are camera_topics' names in its order. Both
    empty: ``([], [])`` (the params file decides; a single camera unless it lists cameras).
    """
    cameras = parse_cameras(cameras_text)
    topics = parse_camera_topics(camera_topics_text)
    if not cameras:
        cameras = list(topics)
    return cameras, rig_remappings(cameras, topics)


def parameter_from_params_file(path: str, name: str, node_name: str = "da3_node") -> Optional[object]:
    """The value of parameter ``name`` in a ROS 2 params file (``/**``, ``node_name`` or ``/<ns>/node_name``
    sections; the last one that sets it wins, as rcl applies them in file order); None when unset or unreadable.
    Used by the launch file to pick the RViz config of the params file's rig."""
    try:
        content = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    found = None
    if isinstance(content, dict):
        for key, section in content.items():
            if str(key) == "/**" or str(key).rstrip("/").rsplit("/", 1)[-1] in (node_name, "*"):
                params = section.get("ros__parameters") if isinstance(section, dict) else None
                if isinstance(params, dict) and name in params:
                    found = params[name]
    return found
