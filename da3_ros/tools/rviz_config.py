"""RViz2 config of one da3_node, a single camera or a camera rig, for its namespace (ROS-free; writes YAML).

    python -m da3_ros.tools.rviz_config --namespace /da3 --fixed-frame odom --output rviz/da3.rviz
    python -m da3_ros.tools.rviz_config --cameras left right --namespace /da3 --fixed-frame odom \
        --output rviz/da3_rig_stereo.rviz

One camera (no ``--cameras``): Grid and TF; Images of ``<ns>/depth`` and ``<ns>/confidence`` (off), a
PointCloud2 of ``<ns>/points`` and of ``<ns>/map_points`` (image colours), ``<ns>/path`` and ``<ns>/pose``.
A rig: Grid and TF; per camera a PointCloud2 of ``<ns>/<cam>/points`` (a flat colour of its own, or the image
colours with ``--rgb``) and an Image of ``<ns>/<cam>/depth``; the fused ``<ns>/map_points`` (image colours); the
rig's ``<ns>/odometry`` (axes, covariance off: position variances are 1e6 until the metric scale is known) and
``<ns>/path``. The property names are rviz_default_plugins' (Jazzy / Kilted), QoS as the node publishes
(reliable, depth 5). launch/da3.launch.py writes one of these for the launched node's namespace and cameras when
``rviz:=true``; the committed ``rviz/da3.rviz`` and ``rviz/da3_rig_*.rviz`` are this module's output for the
default namespace /da3 (a test keeps them equal).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Sequence

import yaml

from .rig_launch import CAMERA_NAME

#: flat colours of the cameras' clouds ("R; G; B" as rviz writes them), cycled past the eighth camera
CAMERA_COLORS = ("255; 85; 85", "85; 170; 255", "85; 255; 127", "255; 200; 60",
                 "200; 110; 255", "60; 230; 230", "255; 140; 0", "230; 230; 230")

#: the node's output QoS (da3_node OUTPUT_QOS): reliable, keep last 5
_TOPIC_QOS = {"Depth": 5, "Durability Policy": "Volatile", "History Policy": "Keep Last",
              "Reliability Policy": "Reliable"}


def _topic(name: str) -> Dict[str, Any]:
    return {"Value": name, **_TOPIC_QOS}


def _join(namespace: str, name: str) -> str:
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{namespace}/{name}"


def command_line(cameras: Sequence[str], namespace: str, fixed_frame: str, rgb: bool) -> str:
    """The command that writes this config (recorded in the file's header; no cameras: one camera)."""
    listed = f"--cameras {' '.join(cameras)} " if cameras else ""
    return (f"python -m da3_ros.tools.rviz_config {listed}--namespace {namespace} "
            f"--fixed-frame {fixed_frame}" + (" --rgb" if rgb else ""))


def _frame_displays() -> List[Dict[str, Any]]:
    return [
        {"Class": "rviz_default_plugins/Grid", "Name": "Grid", "Enabled": True, "Value": True,
         "Reference Frame": "<Fixed Frame>", "Cell Size": 1, "Plane Cell Count": 20, "Color": "160; 160; 164"},
        {"Class": "rviz_default_plugins/TF", "Name": "TF", "Enabled": True, "Value": True, "Show Names": True,
         "Show Axes": True, "Show Arrows": True, "Marker Scale": 0.5, "Frame Timeout": 15},
    ]


def _map_display(namespace: str, name: str) -> Dict[str, Any]:
    return {"Class": "rviz_default_plugins/PointCloud2", "Name": name, "Enabled": True, "Value": True,
            "Topic": _topic(_join(namespace, "map_points")), "Style": "Points", "Size (Pixels)": 1,
            "Decay Time": 0, "Position Transformer": "XYZ", "Color Transformer": "RGB8"}


def _path_display(namespace: str, name: str) -> Dict[str, Any]:
    return {"Class": "rviz_default_plugins/Path", "Name": name, "Enabled": True, "Value": True,
            "Topic": _topic(_join(namespace, "path")), "Color": "25; 255; 0", "Line Style": "Lines",
            "Line Width": 0.03}


def camera_displays(namespace: str = "/da3") -> List[Dict[str, Any]]:
    """One camera's display list: Grid, TF, depth and confidence (off) Images, points, map points, path, pose."""
    return _frame_displays() + [
        {"Class": "rviz_default_plugins/Image", "Name": "Depth", "Enabled": True, "Value": True,
         "Topic": _topic(_join(namespace, "depth")), "Normalize Range": True},
        {"Class": "rviz_default_plugins/Image", "Name": "Confidence", "Enabled": False, "Value": False,
         "Topic": _topic(_join(namespace, "confidence")), "Normalize Range": True},
        {"Class": "rviz_default_plugins/PointCloud2", "Name": "Points", "Enabled": True, "Value": True,
         "Topic": _topic(_join(namespace, "points")), "Style": "Points", "Size (Pixels)": 2, "Decay Time": 0,
         "Position Transformer": "XYZ", "Color Transformer": "RGB8"},
        _map_display(namespace, "Map points"),
        _path_display(namespace, "Path"),
        {"Class": "rviz_default_plugins/Pose", "Name": "Pose", "Enabled": True, "Value": True,
         "Topic": _topic(_join(namespace, "pose")), "Shape": "Axes", "Axes Length": 0.3, "Axes Radius": 0.03},
    ]


def rig_displays(cameras: Sequence[str], namespace: str = "/da3", rgb: bool = False) -> List[Dict[str, Any]]:
    """The display list: Grid, TF, per camera a PointCloud2 (``<ns>/<cam>/points``), map points, odometry,
    path, per camera a depth Image (``<ns>/<cam>/depth``)."""
    displays = _frame_displays()
    for index, camera in enumerate(cameras):
        cloud = {"Class": "rviz_default_plugins/PointCloud2", "Name": f"{camera} points", "Enabled": True,
                 "Value": True, "Topic": _topic(_join(namespace, f"{camera}/points")), "Style": "Points",
                 "Size (Pixels)": 2, "Decay Time": 0, "Position Transformer": "XYZ"}
        if rgb:
            cloud["Color Transformer"] = "RGB8"
        else:
            cloud.update({"Color Transformer": "FlatColor", "Color": CAMERA_COLORS[index % len(CAMERA_COLORS)]})
        displays.append(cloud)
    displays += [
        _map_display(namespace, "Map points (all cameras)"),
        {"Class": "rviz_default_plugins/Odometry", "Name": "Rig odometry", "Enabled": True, "Value": True,
         "Topic": _topic(_join(namespace, "odometry")), "Keep": 100, "Position Tolerance": 0.1,
         "Angle Tolerance": 0.1, "Shape": {"Value": "Axes", "Axes Length": 0.3, "Axes Radius": 0.03},
         "Covariance": {"Value": False}},
        _path_display(namespace, "Rig path"),
    ]
    for camera in cameras:
        displays.append({"Class": "rviz_default_plugins/Image", "Name": f"{camera} depth", "Enabled": True,
                         "Value": True, "Topic": _topic(_join(namespace, f"{camera}/depth")),
                         "Normalize Range": True})
    return displays


def rig_rviz_config(cameras: Sequence[str], namespace: str = "/da3", fixed_frame: str = "odom",
                    rgb: bool = False) -> Dict[str, Any]:
    """A rig's whole RViz2 config (the structure rviz2 saves: Panels, Visualization Manager, Window Geometry)."""
    if not cameras:
        raise ValueError("rviz_config: at least one camera is needed (one camera's config: camera_rviz_config)")
    bad = [camera for camera in cameras if not CAMERA_NAME.fullmatch(camera)]
    if bad:
        raise ValueError(f"rviz_config: {', '.join(bad)} not a relative ROS namespace")
    if len(set(cameras)) != len(cameras):
        raise ValueError(f"rviz_config: a camera is listed twice in {list(cameras)}")
    return _config(rig_displays(cameras, namespace, rgb), fixed_frame)


def camera_rviz_config(namespace: str = "/da3", fixed_frame: str = "odom") -> Dict[str, Any]:
    """One camera's whole RViz2 config (``camera_displays``)."""
    return _config(camera_displays(namespace), fixed_frame)


def _config(displays: List[Dict[str, Any]], fixed_frame: str) -> Dict[str, Any]:
    if not fixed_frame or fixed_frame.startswith("/"):
        raise ValueError(f"rviz_config: the fixed frame must be a TF frame id (no leading /), got {fixed_frame!r}")
    return {
        "Panels": [{"Class": "rviz_common/Displays", "Name": "Displays"},
                   {"Class": "rviz_common/Views", "Name": "Views"}],
        "Visualization Manager": {
            "Class": "",
            "Displays": displays,
            "Enabled": True,
            "Global Options": {"Fixed Frame": fixed_frame, "Background Color": "48; 48; 48", "Frame Rate": 30},
            "Name": "root",
            "Tools": [{"Class": "rviz_default_plugins/Interact", "Hide Inactive Objects": True},
                      {"Class": "rviz_default_plugins/MoveCamera"},
                      {"Class": "rviz_default_plugins/Select"},
                      {"Class": "rviz_default_plugins/FocusCamera"},
                      {"Class": "rviz_default_plugins/Measure"}],
            "Value": True,
            "Views": {"Current": {"Class": "rviz_default_plugins/Orbit", "Name": "Current View", "Distance": 8,
                                  "Target Frame": "<Fixed Frame>", "Pitch": 0.6, "Yaw": 3.14},
                      "Saved": None},
        },
        "Window Geometry": {"Width": 1400, "Height": 900},
    }


def render(cameras: Sequence[str] = (), namespace: str = "/da3", fixed_frame: str = "odom", rgb: bool = False) -> str:
    """The config file's text: a header naming the command, then the YAML (deterministic). ``cameras`` empty:
    one camera (``rgb`` then has no effect: its clouds are always image-coloured)."""
    if cameras:
        config = rig_rviz_config(cameras, namespace, fixed_frame, rgb)
        what = f"a da3_node camera rig (cameras: {', '.join(cameras)})"
    else:
        config, what, rgb = camera_rviz_config(namespace, fixed_frame), "one da3_node camera", False
    header = (f"# RViz2 config of {what} in namespace {_join(namespace, '')[:-1] or '/'}, generated by\n"
              f"#   {command_line(cameras, namespace, fixed_frame, rgb)}\n")
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=120)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m da3_ros.tools.rviz_config", description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", nargs="+", default=[],
                        help="rig camera namespaces, e.g. left right (none: one camera)")
    parser.add_argument("--namespace", default="/da3", help="the node's namespace (default /da3)")
    parser.add_argument("--fixed-frame", default="odom", help="RViz fixed frame: the node's odom_frame (default odom)")
    parser.add_argument("--rgb", action="store_true", help="colour the cameras' clouds by their images (RGB8)")
    parser.add_argument("--output", default="-", help="file to write (default - = stdout)")
    args = parser.parse_args(argv)
    try:
        text = render(args.cameras, args.namespace, args.fixed_frame, args.rgb)
    except ValueError as error:
        parser.error(str(error))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
