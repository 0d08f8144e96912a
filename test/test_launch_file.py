"""launch/da3.launch.py: without launch_ros (not installable here) its arguments, read with ast, name real node
parameters, and the robot-integration and rig ones are exposed; the rig arguments' parsing
(da3_ros/tools/rig_launch.py) is checked directly. test/test_launch_ros.py evaluates it with launch_ros."""
import ast
from pathlib import Path

import pytest

from da3_ros.node.parameters import DEFAULTS
from da3_ros.tools.rig_launch import (camera_info_topic, parameter_from_params_file, parse_camera_topics,
                                      parse_cameras, resolve_rig, rig_remappings)

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "da3.launch.py"


def _launch_arguments(tree):
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            names.append(node.args[0].value)
    return names


def _tuple_constant(tree, name):
    return next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(getattr(t, "id", "") == name for t in n.targets))


def test_launch_arguments_override_real_parameters():
    tree = ast.parse(LAUNCH.read_text())
    declared = _launch_arguments(tree)
    overrides = _tuple_constant(tree, "STRING_OVERRIDES")
    float_overrides = _tuple_constant(tree, "FLOAT_OVERRIDES")
    assert {"base_frame", "scale_source", "pose_source", "odometry_frame", "publish_tf"} <= set(declared)
    assert {"cameras", "camera_topics", "sync_slop_s", "rviz", "rviz_config", "use_sim_time"} <= set(declared)
    assert float_overrides == ("sync_slop_s",)
    # use_sim_time: a ROS one
    assert _tuple_constant(tree, "BOOL_OVERRIDES") == ("publish_tf", "use_sim_time", "loop_closure")
    assert {"map_frame", "map_directory", "map_load_directory"} <= set(overrides)
    for name in (*overrides, *float_overrides, "publish_tf", "loop_closure", "cameras"):
        assert name in declared and name in DEFAULTS, name
    assert isinstance(DEFAULTS["sync_slop_s"], float) and DEFAULTS["cameras"] == []
    assert len(declared) == len(set(declared))


def test_cameras_argument_spellings():
    for text in ("[left, right]", "left,right", "left right", "['left', 'right']", ' ["left","right"] '):
        assert parse_cameras(text) == ["left", "right"], text
    assert parse_cameras("cam0,cam1,cam2") == ["cam0", "cam1", "cam2"]
    assert parse_cameras("[front/left, front/right]") == ["front/left", "front/right"]
    assert parse_cameras("") == [] and parse_cameras("[]") == [] and parse_cameras("  ") == []
    with pytest.raises(ValueError, match="'/left' is not a relative ROS namespace"):
        parse_cameras("[/left, right]")
    with pytest.raises(ValueError, match="'0cam'"):
        parse_cameras("0cam")
    with pytest.raises(ValueError, match="left listed twice"):
        parse_cameras("left, right, left")


def test_camera_topics_remap_image_compressed_and_camera_info_beside_it():
    topics = parse_camera_topics("left:=/stereo/left/image_raw, right:=/stereo/right/image_rect")
    assert topics == {"left": "/stereo/left/image_raw", "right": "/stereo/right/image_rect"}
    assert list(topics) == ["left", "right"]
    assert camera_info_topic("/stereo/left/image_raw") == "/stereo/left/camera_info"
    assert camera_info_topic("/image") == "/camera_info" and camera_info_topic("cam/image") == "cam/camera_info"
    assert camera_info_topic("image") == "camera_info"
    assert rig_remappings(["left", "right"], {"right": "/r/image_raw"}) == [
        ("right/image", "/r/image_raw"), ("right/image/compressed", "/r/image_raw/compressed"),
        ("right/camera_info", "/r/camera_info")]
    assert parse_camera_topics("") == {}
    for bad, reason in (("left=/a/image", "not CAMERA:=IMAGE_TOPIC"), ("left:=", "not CAMERA:=IMAGE_TOPIC"),
                        ("/left:=/a", "not a relative ROS namespace"), ("left:=/a b:=/c/", "not a valid topic"),
                        ("left:=/a/1x", "not a valid topic"), ("left:=/a, left:=/b", "given twice")):
        with pytest.raises(ValueError, match=reason):
            parse_camera_topics(bad)
    with pytest.raises(ValueError, match="camera_topics names front, not in cameras"):
        rig_remappings(["left", "right"], {"front": "/f/image"})


def test_resolve_rig_takes_the_cameras_from_camera_topics_when_cameras_is_empty():
    cameras, remaps = resolve_rig("", "cam1:=/ring/c1/image_raw, cam0:=/ring/c0/image_raw")
    assert cameras == ["cam1", "cam0"]
    assert [src for src, _ in remaps] == ["cam1/image", "cam1/image/compressed", "cam1/camera_info",
                                          "cam0/image", "cam0/image/compressed", "cam0/camera_info"]
    assert resolve_rig("[left, right]", "") == (["left", "right"], [])
    assert resolve_rig("", "") == ([], [])


def test_parameter_from_params_file(tmp_path):
    assert parameter_from_params_file(str(REPO / "config" / "da3.yaml"), "cameras") == []
    assert parameter_from_params_file(str(REPO / "config" / "da3.yaml"), "odom_frame") == "odom"
    path = tmp_path / "rig.yaml"
    path.write_text("/**:\n  ros__parameters:\n    cameras: [a, b]\n    odom_frame: world\n"
                    "/robot/da3_node:\n  ros__parameters:\n    cameras: [left, right]\n"
                    "other_node:\n  ros__parameters:\n    odom_frame: nope\n")
    assert parameter_from_params_file(str(path), "cameras") == ["left", "right"]   # the later, node-specific one
    assert parameter_from_params_file(str(path), "odom_frame") == "world"
    assert parameter_from_params_file(str(path), "sync_slop_s") is None
    assert parameter_from_params_file(str(tmp_path / "missing.yaml"), "cameras") is None
