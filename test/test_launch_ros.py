"""launch/da3.launch.py evaluated with the real launch / launch_ros (a ROS 2 install, or the ros2/launch +
ros2/launch_ros sources on PYTHONPATH; skipped when they are not importable): the node's namespace,
remappings and parameter files (read back with rclpy's own parser, so the types are rcl's) and the RViz
config it opens, for a stereo rig, a single camera and a params file that lists a ring. Marked ``ros``
because launch_ros imports rclpy (no context is created, nothing is started, no DDS)."""
import importlib.util
from pathlib import Path

import pytest
import yaml

from da3_ros.node.parameters import DEFAULTS
from da3_ros.tools.rviz_config import render

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "da3.launch.py"


def _evaluate(arguments):
    """generate_launch_description() with ``arguments`` set, its declarations and OpaqueFunction visited
    (what `ros2 launch` does before starting processes) -> (the node action, the rviz action or None)."""
    launch = pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import LifecycleNode, Node

    spec = importlib.util.spec_from_file_location("da3_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.get_package_share_directory = lambda package: str(REPO)   # the source tree has the share layout
    description = module.generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update(arguments)
    actions = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
        elif isinstance(entity, OpaqueFunction):
            actions += entity.visit(context) or []
    nodes = [a for a in actions if isinstance(a, LifecycleNode)]
    rviz = [a for a in actions if isinstance(a, Node) and not isinstance(a, LifecycleNode)]
    assert len(nodes) == 1 and len(rviz) <= 1
    nodes[0]._perform_substitutions(context)
    return nodes[0], (rviz[0] if rviz else None), context


class _LaunchParamsLoader(yaml.SafeLoader):
    """launch_ros writes list parameters as ``!!python/tuple`` (yaml.dump of a tuple); rcl's C parser, which
    the node uses, ignores the tag and reads a sequence: so does this loader."""


_LaunchParamsLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                                    lambda loader, node: loader.construct_sequence(node))


def _node_parameters(node):
    """The node's parameter files as rcl applies them: ``/**`` and the node's own section, later files
    winning -> {name: value}, each value typed by rclpy's own rule (Parameter.Type.from_parameter_value)."""
    from rclpy.parameter import Parameter

    values = {}
    for path, is_file in node._Node__expanded_parameter_arguments:
        assert is_file, path
        content = yaml.load(Path(path).read_text(), Loader=_LaunchParamsLoader)
        for key in ("/**", node.node_name):
            values.update(content.get(key, {}).get("ros__parameters", {}))
    for name, value in values.items():
        Parameter.Type.from_parameter_value(value)   # raises TypeError for what a parameter cannot hold
    return values


def _rviz_file(rviz, context):
    from launch.utilities import perform_substitutions

    arguments = []
    for argument in rviz.cmd[1:]:   # the node's own arguments, up to the ROS ones (substituted when it runs)
        arguments.append(perform_substitutions(context, argument))
        if arguments[-1] == "--ros-args":
            break
    return Path(arguments[arguments.index("-d") + 1])


def test_launch_description_with_launch_ros_stereo_rig(tmp_path):
    node, rviz, context = _evaluate({
        "cameras": "[left, right]", "camera_topics": "left:=/stereo/left/image_raw,right:=/stereo/right/image_raw",
        "sync_slop_s": "0.01", "base_frame": "base_link", "scale_source": "rig", "rviz": "true"})
    assert node.expanded_node_namespace == "/da3"
    remaps = dict(node.expanded_remapping_rules)
    assert remaps["left/image"] == "/stereo/left/image_raw"
    assert remaps["left/image/compressed"] == "/stereo/left/image_raw/compressed"
    assert remaps["left/camera_info"] == "/stereo/left/camera_info"
    assert remaps["right/camera_info"] == "/stereo/right/camera_info"
    params = _node_parameters(node)
    assert params["cameras"] == ["left", "right"] and params["sync_slop_s"] == 0.01
    assert isinstance(params["sync_slop_s"], float) and all(isinstance(c, str) for c in params["cameras"])
    assert params["base_frame"] == "base_link" and params["scale_source"] == "rig"
    assert params["window_size"] == DEFAULTS["window_size"]   # the params file is still read first
    config = _rviz_file(rviz, context)
    assert config.read_text() == render(["left", "right"], "/da3", "odom")
    assert config.read_text() == (REPO / "rviz" / "da3_rig_stereo.rviz").read_text()


def test_launch_description_with_launch_ros_single_camera_and_params_file_rig(tmp_path):
    node, rviz, context = _evaluate({"image": "/cam/image_raw", "rviz": "true"})
    assert "cameras" not in _node_parameters(node) or _node_parameters(node)["cameras"] in ([], None)
    assert dict(node.expanded_remapping_rules)["image"] == "/cam/image_raw"
    assert _rviz_file(rviz, context).read_text() == (REPO / "rviz" / "da3.rviz").read_text()
    # another namespace: the generated config names the node's topics there (issue 19: not /da3/...)
    node, rviz, context = _evaluate({"namespace": "/robot1/da3", "rviz": "true"})
    assert _rviz_file(rviz, context).read_text() == render([], "/robot1/da3", "odom")
    # a params file listing a ring: no rig arguments, the RViz config still shows its three cameras
    params_file = tmp_path / "ring.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    cameras: [cam0, cam1, cam2]\n    odom_frame: odom\n")
    node, rviz, context = _evaluate({"params_file": str(params_file), "namespace": "da3", "rviz": "1"})
    assert _node_parameters(node)["cameras"] == ["cam0", "cam1", "cam2"]
    assert _rviz_file(rviz, context).read_text() == (REPO / "rviz" / "da3_rig_ring3.rviz").read_text()
    node, rviz, _ = _evaluate({"cameras": "cam0,cam1", "rviz_config": "/my/rig.rviz", "rviz": "false"})
    assert rviz is None and _node_parameters(node)["cameras"] == ["cam0", "cam1"]
    with pytest.raises(ValueError, match="sync_slop_s must be a number"):
        _evaluate({"sync_slop_s": "fast"})
    with pytest.raises(ValueError, match="not in cameras"):
        _evaluate({"cameras": "left", "camera_topics": "right:=/r/image"})


def test_launch_description_readme_command_with_an_engine(tmp_path):
    """README's ``image:=... camera_info:=... engine_file_path:=...``: the backend is chosen from the engine even
    when the params file names another one; camera_info defaults to the image topic's sibling."""
    node, _, _ = _evaluate({"image": "/camera/color/image_raw", "camera_info": "/camera/color/camera_info",
                            "engine_file_path": "/models/da3s.engine"})
    params = _node_parameters(node)
    assert params["engine_file_path"] == "/models/da3s.engine" and params["backend"] == ""
    assert dict(node.expanded_remapping_rules)["camera_info"] == "/camera/color/camera_info"
    params_file = tmp_path / "ort.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    backend: onnxruntime\n    model_file_path: /m/x.onnx\n")
    node, _, _ = _evaluate({"params_file": str(params_file), "image": "/front/image_rect",
                            "engine_file_path": "/models/da3s.engine"})
    params = _node_parameters(node)
    assert params["backend"] == "" and params["model_file_path"] == "/m/x.onnx"   # -> tensorrt, built from x.onnx
    assert dict(node.expanded_remapping_rules)["camera_info"] == "/front/camera_info"
    node, _, _ = _evaluate({"params_file": str(params_file), "backend": "torch", "model_file_path": "/m/ckpt"})
    assert _node_parameters(node)["backend"] == "torch"             # an explicit backend still wins
    node, _, _ = _evaluate({"params_file": str(params_file)})
    assert _node_parameters(node)["backend"] == "onnxruntime"       # no file at launch: the params file's


def test_launch_description_use_sim_time(tmp_path):
    node, rviz, context = _evaluate({"use_sim_time": "true", "rviz": "true"})
    assert _node_parameters(node)["use_sim_time"] is True
    rviz._perform_substitutions(context)
    assert _node_parameters(rviz)["use_sim_time"] is True
    node, rviz, _ = _evaluate({"rviz": "false"})
    assert "use_sim_time" not in _node_parameters(node) and rviz is None   # empty: the params file's (else false)
    node, _, _ = _evaluate({"use_sim_time": "False"})
    assert _node_parameters(node)["use_sim_time"] is False
    with pytest.raises(ValueError, match="use_sim_time must be true or false, got 'sim'"):
        _evaluate({"use_sim_time": "sim"})
