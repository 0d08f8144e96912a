"""Parameters: config/da3.yaml equals the YAML generated from the declarations, the ROS-free configs and
the node share one set of defaults, and (over DDS, node as its own process) describe / set_parameters:
descriptions and ranges, read-only refusals with a reason, live changes of the cheap ones."""
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context

from da3_ros.node.parameters import DEFAULTS, PARAMETERS, RUNTIME_PARAMETERS, generate_yaml, not_implemented_settings

pytestmark = pytest.mark.ros  # DDS test: an rclpy context, and da3_node as its own process over DDS

CONFIG = Path(__file__).resolve().parents[1] / "config" / "da3.yaml"
NS = "/da3"


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
        cameras = node.describe_parameter("cameras")
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    in_yaml = _yaml_params()
    assert sorted(declared) == sorted(in_yaml), (
        f"only declared: {sorted(set(declared) - set(in_yaml))}; only in yaml: {sorted(set(in_yaml) - set(declared))}")
    for name, value in in_yaml.items():
        assert declared[name] == value, f"{name}: node default {declared[name]!r} != yaml {value!r}"
    from rcl_interfaces.msg import ParameterType

    assert cameras.type == ParameterType.PARAMETER_STRING_ARRAY and cameras.read_only   # not BYTE_ARRAY from []


def test_committed_yaml_is_the_generated_one():
    assert CONFIG.read_text() == generate_yaml(), (
        "config/da3.yaml is stale: run python -m da3_ros.node.parameters --yaml config/da3.yaml")


def test_interface_contract_parameters_exist():
    names = {p.name for p in PARAMETERS}
    contract = {"backend", "model_file_path", "engine_file_path", "force_engine_update", "window_size", "odom_frame",
                "camera_frame", "publish_tf", "publish_points", "point_stride", "confidence_threshold", "min_depth",
                "max_depth", "max_rate_hz", "image_transport", "qos_reliability", "qos_depth", "autostart",
                # robot integration (INTERFACES.md), declared with their documented defaults
                "base_frame", "scale_source", "odometry_frame", "pose_source", "cameras", "sync_slop_s"}
    assert contract <= names, sorted(contract - names)
    assert len(names) == len(PARAMETERS)   # no duplicates
    assert {k: DEFAULTS[k] for k in ("base_frame", "scale_source", "odometry_frame", "pose_source", "cameras",
                                     "sync_slop_s")} == dict(base_frame="", scale_source="none", odometry_frame="odom",
                                                             pose_source="none", cameras=[], sync_slop_s=0.02)
    # the window shape comes from the model by default
    assert (DEFAULTS["window_size"], DEFAULTS["network_height"], DEFAULTS["network_width"]) == (0, 0, 0)
    assert (DEFAULTS["ref_view"], DEFAULTS["variant"]) == ("", "")
    assert set(RUNTIME_PARAMETERS) == {"confidence_threshold", "point_stride", "min_depth", "max_depth", "max_rate_hz",
                                       "publish_depth", "publish_confidence", "publish_points", "publish_pose",
                                       "publish_tf"}
    assert not_implemented_settings(DEFAULTS) == []
    # the rig (issue 14) is implemented: its rules are configuration checks now
    assert not_implemented_settings(dict(DEFAULTS, scale_source="rig", cameras=["left", "right"])) == []
    # implemented robot integration (issue 13): no longer refused as such
    assert not_implemented_settings(dict(DEFAULTS, scale_source="odometry", pose_source="tf",
                                         base_frame="base_link")) == []


def test_one_source_of_tracker_defaults():
    """The node's defaults are the ROS-free dataclasses' (library users and benchmarks run the same tracker)."""
    from da3_ros.pipeline.processor_config import ProcessorConfig
    from da3_ros.tracking.keyframes import KeyframePolicyConfig
    from da3_ros.tracking.tracker import TrackerConfig
    from da3_ros.tracking.window_alignment import AlignmentConfig

    kf, al, tr = KeyframePolicyConfig(), AlignmentConfig(), TrackerConfig()
    assert (DEFAULTS["keyframe_translation"], DEFAULTS["keyframe_rotation_deg"], DEFAULTS["keyframe_max_frames"],
            DEFAULTS["keyframe_max_interval_s"]) == (kf.translation_ratio, kf.rotation_deg, kf.max_frame_gap,
                                                     kf.max_time_gap_s) == (0.10, 10.0, 15, 2.0)
    assert DEFAULTS["alignment_min_inlier_ratio"] == al.min_inlier_ratio
    assert DEFAULTS["alignment_max_scale_inconsistency"] == al.max_scale_inconsistency
    assert DEFAULTS["max_rejected_windows"] == tr.max_consecutive_rejections
    processor = ProcessorConfig()
    from_defaults = ProcessorConfig.from_parameters(DEFAULTS.__getitem__)
    assert from_defaults == processor
    tracker = processor.tracker_config(metric=False, window_size=4)
    assert tracker.keyframes == kf and tracker.alignment.min_inlier_ratio == al.min_inlier_ratio


# -- over DDS: the node as its own process -----------------------------------------------------------------
def _call(ros, client, request, timeout=30.0):
    assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
    future = client.call_async(request)
    ros.spin_until(future.done, timeout, f"reply of {client.srv_name}")
    return future.result()


def test_describe_set_read_only_and_live_change_over_dds(ros_node, process_launcher, tmp_path, reduced_onnx):
    from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header

    from node_fixtures import node_command, write_params
    from ros_harness import RELIABLE

    from da3_ros.geometry.camera import PinholeCamera
    from da3_ros.ros_io import intrinsics_to_camera_info, numpy_to_image
    from da3_ros.synthetic.sequence import SyntheticSequence

    params = write_params(tmp_path, backend="onnxruntime", model_file_path=str(reduced_onnx), num_threads=1,
                          point_stride=4, qos_reliability="reliable", min_depth=0.0, max_depth=1e3)
    proc = process_launcher.start(node_command(params, NS), name="da3_node")
    node = ros_node.node
    describe = node.create_client(DescribeParameters, f"{NS}/da3_node/describe_parameters")
    set_params = node.create_client(SetParameters, f"{NS}/da3_node/set_parameters")

    reply = _call(ros_node, describe, DescribeParameters.Request(names=["max_depth", "window_size", "model_file_path",
                                                                        "point_stride"]))
    by_name = {d.name: d for d in reply.descriptors}
    assert by_name["max_depth"].description.startswith("drop points farther than this")
    assert not by_name["max_depth"].read_only
    rng = by_name["max_depth"].floating_point_range[0]
    assert (rng.from_value, rng.to_value) == (0.0, 1e6)
    wrange = by_name["window_size"].integer_range[0]
    assert (wrange.from_value, wrange.to_value) == (0, 64) and by_name["window_size"].read_only
    assert by_name["model_file_path"].read_only and by_name["model_file_path"].type == ParameterType.PARAMETER_STRING
    assert by_name["point_stride"].integer_range[0].from_value == 1

    def set_one(name, **value):
        msg = ParameterMsg(name=name, value=ParameterValue(**value))
        return _call(ros_node, set_params, SetParameters.Request(parameters=[msg])).results[0]

    refused = set_one("model_file_path", type=ParameterType.PARAMETER_STRING, string_value="/other.onnx")
    assert not refused.successful and "read-only" in refused.reason and "model_file_path" in refused.reason
    out_of_range = set_one("point_stride", type=ParameterType.PARAMETER_INTEGER, integer_value=0)
    assert not out_of_range.successful and "point_stride" in out_of_range.reason
    crossed = set_one("min_depth", type=ParameterType.PARAMETER_DOUBLE, double_value=2e3)
    assert not crossed.successful and "must be smaller than max_depth" in crossed.reason

    # live change of a cheap parameter: the next 'points' message has the new stride
    seq = SyntheticSequence(width=160, height=120)
    image_pub = ros_node.publisher(f"{NS}/image", Image, RELIABLE)
    info_pub = ros_node.publisher(f"{NS}/camera_info", CameraInfo, RELIABLE)
    clouds = ros_node.subscribe(f"{NS}/points", PointCloud2)
    depths = ros_node.subscribe(f"{NS}/depth", Image)
    for pub in (image_pub, info_pub):
        ros_node.wait_for_subscribers(pub, 1, timeout=60)

    def alive():
        assert proc.poll() is None, process_launcher.log(proc)
    # the node builds points and depth only for a matched subscriber: ours matched on its side first
    ros_node.wait_for_node_outputs(f"{NS}/da3_node", check=alive)

    def frame(i, expect_points=True):
        """Publish frame i and wait for its depth (and points when expected); -> its points or None."""
        header = Header(frame_id="cam")
        header.stamp.sec, header.stamp.nanosec = 100 + i, 0
        info_pub.publish(intrinsics_to_camera_info(PinholeCamera(160, 120, seq.K), header=header))
        image_pub.publish(numpy_to_image(seq.frame(i).rgb, "rgb8", header=header))
        ros_node.spin_until(lambda: any(d.header.stamp.sec == 100 + i for d in depths) or proc.poll() is not None,
                            30, f"depth of frame {i}")
        assert proc.poll() is None, process_launcher.log(proc)
        mine = lambda: [c for c in clouds if c.header.stamp.sec == 100 + i]   # noqa: E731
        if expect_points:
            ros_node.spin_until(lambda: bool(mine()), 30, f"points of frame {i}")
        else:
            ros_node.spin_for(1.0)   # points follow depth within milliseconds when published at all
        return mine()[-1] if mine() else None

    first = frame(0)
    assert (first.width, first.height) == (40, 30)             # stride 4 at 160x120
    changed = set_one("point_stride", type=ParameterType.PARAMETER_INTEGER, integer_value=8)
    assert changed.successful, changed.reason
    after = frame(1)
    assert (after.width, after.height) == (20, 15)             # stride 8 from the next frame on
    changed = set_one("publish_points", type=ParameterType.PARAMETER_BOOL, bool_value=False)
    assert changed.successful, changed.reason
    assert frame(2, expect_points=False) is None               # processed (depth came), no points
    changed = set_one("publish_points", type=ParameterType.PARAMETER_BOOL, bool_value=True)
    assert changed.successful and frame(3) is not None
    assert proc.poll() is None, process_launcher.log(proc)


def test_a_snapshot_left_in_the_mailbox_at_deactivation_is_counted_busy(tmp_path):
    """In-process (no DDS traffic): a snapshot the worker never took is dropped "busy" when the worker stops,
    and the accounting still balances (received = processed + dropped)."""
    import numpy as np
    from rclpy.parameter import Parameter

    from da3_ros.backends.oracle_backend import write_oracle_spec
    from da3_ros.node.da3_node import Da3Node

    rgb = np.zeros((48, 64, 3), np.uint8)
    spec = write_oracle_spec(tmp_path / "spec.json", {0: rgb}, width=64, height=48, views=2)
    context = Context()
    rclpy.init(context=context)
    try:
        node = Da3Node(context=context, parameter_overrides=[
            Parameter("backend", value="oracle"), Parameter("model_file_path", value=str(spec)),
            Parameter("autostart", value=False)])
        from rclpy.lifecycle import TransitionCallbackReturn

        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._configure_error
        node._offer(object())   # a snapshot nobody will take: no worker runs while inactive
        node._stop_worker()
        snap = node.accounting.snapshot()
        assert (snap["received"], snap["processed"], snap["dropped"], snap["dropped_busy"]) == (1, 0, 1, 1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
