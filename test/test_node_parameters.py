"""config/da3.yaml and the node's declared parameters match exactly, in both directions."""
from pathlib import Path

import rclpy
import yaml
from rclpy.context import Context

from da3_ros.node.parameters import PARAMETERS

CONFIG = Path(__file__).resolve().parents[1] / "config" / "da3.yaml"


def _yaml_params():
    return yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]


def test_yaml_lists_every_declared_parameter_and_nothing_else():
    from da3_ros.node.da3_node import Da3Node

    context = Context()
    rclpy.init(context=context)
    try:
        node = Da3Node(context=context)
        declared = {name: node.get_parameter(name).value for name in node._parameters
                    if name not in ("use_sim_time", "start_type_description_service")}  # rclpy built-ins
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    in_yaml = _yaml_params()
    assert sorted(declared) == sorted(in_yaml), (
        f"only declared: {sorted(set(declared) - set(in_yaml))}; only in yaml: {sorted(set(in_yaml) - set(declared))}")
    for name, value in in_yaml.items():
        assert declared[name] == value, f"{name}: node default {declared[name]!r} != yaml {value!r}"


def test_interface_contract_parameters_exist():
    names = {p.name for p in PARAMETERS}
    contract = {"backend", "model_file_path", "engine_file_path", "force_engine_update", "window_size", "odom_frame",
                "camera_frame", "publish_tf", "publish_points", "point_stride", "confidence_threshold", "min_depth",
                "max_depth", "max_rate_hz", "image_transport", "qos_reliability", "qos_depth", "autostart"}
    assert contract <= names, sorted(contract - names)
    assert len(names) == len(PARAMETERS)   # no duplicates
