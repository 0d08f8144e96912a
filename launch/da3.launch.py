"""Launch da3_node (for a ROS 2 install with launch_ros; here run the entry point directly).

    ros2 launch da3_ros da3.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info engine_file_path:=/path/model.engine rviz:=true

    ros2 launch da3_ros da3.launch.py backend:=onnxruntime model_file_path:=/path/model_n2_196x350.onnx

    # on a robot (README "On your robot"): base_link pose, metric scale from the wheel odometry in TF
    ros2 launch da3_ros da3.launch.py engine_file_path:=/path/model.engine base_frame:=base_link \
        scale_source:=odometry odometry_frame:=wheel_odom

Camera rigs (README "Camera rigs"): one node, the C cameras' frames of one instant in one cross-view window
(N = C x (k + 1) views: export the model with ``--views N``), metric scale from the rig's extrinsics in TF.
The node subscribes ``<cam>/image`` and ``<cam>/camera_info`` in its namespace; ``camera_topics`` remaps
them to the drivers' image topics (camera_info beside each, image_transport's rule), cameras without an
entry stay at ``/<namespace>/<cam>/image``. ``rviz:=true`` opens a config with every camera's cloud.

    # stereo pair, N = 2 cameras x (current + 1 keyframe snapshot) = 4
    ros2 launch da3_ros da3.launch.py model_file_path:=/path/da3s_n4.onnx backend:=onnxruntime \
        cameras:="[left, right]" base_frame:=base_link scale_source:=rig \
        camera_topics:="left:=/stereo/left/image_raw, right:=/stereo/right/image_raw" rviz:=true

    # three-camera ring, N = 3 x 2 = 6, drivers publishing /da3/cam0/image ... directly
    ros2 launch da3_ros da3.launch.py engine_file_path:=/path/da3s_n6.engine cameras:=cam0,cam1,cam2 \
        base_frame:=base_link scale_source:=rig sync_slop_s:=0.01 rviz:=true

Arguments: params_file, image, camera_info, namespace, engine_file_path, model_file_path,
backend, base_frame, scale_source, pose_source, odometry_frame, publish_tf (true | false), use_sim_time
(true | false), loop_closure (true | false), map_frame, map_directory, map_load_directory (a folder written by
``~/save_map``: relocalise against it), cameras ("[left, right]" or "left,right"), camera_topics
("CAM:=IMAGE_TOPIC, ..."), sync_slop_s (seconds), rviz, rviz_config. ``cameras`` empty with ``camera_topics``
set: the cameras are camera_topics' names. ``camera_info`` empty: the image topic's sibling (image_transport's rule,
``/camera/color/image_raw`` -> ``/camera/color/camera_info``). ``backend`` empty: chosen from the model
file (``engine_file_path`` -> tensorrt, ``.onnx`` -> onnxruntime, a checkpoint -> torch); an
``engine_file_path`` or ``model_file_path`` given here also sets ``backend`` to empty unless ``backend``
is given too, so the file given at launch decides, whatever the params file's backend.
The model alone is a complete configuration: config/da3.yaml leaves window_size, network_height,
network_width at 0 and ref_view / variant at "" (= the model file's), so any exported window shape runs
without further arguments. Non-empty launch arguments override the params file.
``rviz_config`` empty: a config written at launch by ``da3_ros.tools.rviz_config`` for this namespace, the
params file's ``odom_frame`` and the cameras (from ``cameras`` / ``camera_topics`` or the params file; none: one
camera), so its topics are the node's whatever the namespace (under /da3 it equals the installed rviz/da3.rviz,
rviz/da3_rig_stereo.rviz for [left, right] and rviz/da3_rig_ring3.rviz for [cam0, cam1, cam2]).
Valid for launch_ros Jazzy and Kilted (LifecycleNode with explicit name and namespace; the node
configures/activates itself, ``autostart`` parameter, so LifecycleNode's own autostart stays off).
"""
import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from da3_ros.tools.rig_launch import camera_info_topic, parameter_from_params_file, resolve_rig
from da3_ros.tools.rviz_config import render as render_rviz_config

#: launch arguments that override the params file when non-empty
STRING_OVERRIDES = ("engine_file_path", "model_file_path", "backend", "base_frame", "scale_source", "pose_source",
                    "odometry_frame", "map_frame", "map_directory", "map_load_directory")
#: launch arguments that override the params file's number of the same name when non-empty
FLOAT_OVERRIDES = ("sync_slop_s",)
#: launch arguments (true | false) that override the params file's boolean of the same name when non-empty
BOOL_OVERRIDES = ("publish_tf", "use_sim_time", "loop_closure")


def _overrides(context):
    """Non-empty launch arguments -> node parameters (typed); raises ValueError naming a bad value."""
    overrides = {}
    for name in STRING_OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    for name in FLOAT_OVERRIDES:
        value = LaunchConfiguration(name).perform(context).strip()
        if value:
            try:
                overrides[name] = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number (seconds), got '{value}'") from None
    for name in BOOL_OVERRIDES:
        value = LaunchConfiguration(name).perform(context).strip().lower()
        if value:
            if value not in ("true", "false"):
                raise ValueError(f"{name} must be true or false, got '{value}'")
            overrides[name] = value == "true"
    files_given = any(LaunchConfiguration(name).perform(context) for name in ("engine_file_path", "model_file_path"))
    if files_given and "backend" not in overrides:
        overrides["backend"] = ""   # the model file given here chooses the backend, not the params file's backend
    return overrides


def _camera_info_topic(context):
    """The camera_info argument, or (empty) the image topic's sibling: /a/b/image_raw -> /a/b/camera_info."""
    explicit = LaunchConfiguration("camera_info").perform(context).strip()
    return explicit or camera_info_topic(LaunchConfiguration("image").perform(context).strip())


def _rviz_config(context, cameras):
    """The RViz config file: rviz_config if set, else one written for this namespace, odom_frame and cameras
    (one camera when there are none) by the generator of the installed rviz/*.rviz."""
    explicit = LaunchConfiguration("rviz_config").perform(context).strip()
    if explicit:
        return explicit
    params_file = LaunchConfiguration("params_file").perform(context)
    odom_frame = parameter_from_params_file(params_file, "odom_frame") or "odom"
    namespace = "/" + LaunchConfiguration("namespace").perform(context).strip("/")
    handle, path = tempfile.mkstemp(prefix="da3_rig_" if cameras else "da3_", suffix=".rviz")
    with os.fdopen(handle, "w") as stream:
        stream.write(render_rviz_config(cameras, namespace, str(odom_frame)))
    return path


def _actions(context):
    overrides = _overrides(context)
    cameras, rig_remaps = resolve_rig(LaunchConfiguration("cameras").perform(context),
                                      LaunchConfiguration("camera_topics").perform(context))
    if cameras:
        overrides["cameras"] = cameras
    else:   # the params file's rig, if it has one (for the RViz config)
        listed = parameter_from_params_file(LaunchConfiguration("params_file").perform(context), "cameras")
        cameras = [str(c) for c in listed] if isinstance(listed, list) else []
    actions = [LifecycleNode(
        package="da3_ros",
        executable="da3_node",
        name="da3_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("image", LaunchConfiguration("image")),
                    ("image/compressed", [LaunchConfiguration("image"), "/compressed"]),
                    ("camera_info", _camera_info_topic(context))] + rig_remaps,
    )]
    rviz = LaunchConfiguration("rviz").perform(context).strip().lower()
    if rviz not in ("true", "false", "1", "0"):   # what IfCondition accepts
        raise ValueError(f"rviz must be true or false, got '{rviz}'")
    if rviz in ("true", "1"):
        sim_time = [{"use_sim_time": overrides["use_sim_time"]}] if "use_sim_time" in overrides else []
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", _rviz_config(context, cameras)], parameters=sim_time))
    return actions


def generate_launch_description():
    share = get_package_share_directory("da3_ros")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "da3.yaml"),
                              description="node parameters (config/da3.yaml)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="input image topic"),
        DeclareLaunchArgument("camera_info", default_value="",
                              description="camera_info topic (empty: beside the image topic, /a/b/camera_info for "
                                          "/a/b/image_raw)"),
        DeclareLaunchArgument("namespace", default_value="da3", description="node namespace"),
        DeclareLaunchArgument("engine_file_path", default_value="", description="TensorRT engine (overrides params)"),
        DeclareLaunchArgument("model_file_path", default_value="", description="ONNX/checkpoint (overrides params)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="tensorrt | onnxruntime | torch (overrides params; empty: chosen from "
                                          "the model file, engine_file_path -> tensorrt, .onnx -> onnxruntime, "
                                          "checkpoint -> torch)"),
        DeclareLaunchArgument("base_frame", default_value="",
                              description="robot body frame, e.g. base_link (overrides params; empty: params file's)"),
        DeclareLaunchArgument("scale_source", default_value="",
                              description="none | odometry | rig | rig_odometry (overrides params)"),
        DeclareLaunchArgument("pose_source", default_value="", description="none | tf (overrides params)"),
        DeclareLaunchArgument("odometry_frame", default_value="",
                              description="frame of the robot's odometry, e.g. wheel_odom (overrides params)"),
        DeclareLaunchArgument("publish_tf", default_value="",
                              description="true | false: broadcast the odometry edge (overrides params)"),
        DeclareLaunchArgument("loop_closure", default_value="",
                              description="true | false: detect and close loops, publish map_frame -> odom_frame "
                                          "(overrides params)"),
        DeclareLaunchArgument("map_frame", default_value="", description="frame of the loop-closed map, e.g. map "
                                                                         "(overrides params)"),
        DeclareLaunchArgument("map_directory", default_value="",
                              description="where ~/save_map writes (overrides params; empty: params file's, "
                                          "else $ROS_HOME/da3_maps)"),
        DeclareLaunchArgument("map_load_directory", default_value="",
                              description="a saved map folder to load and relocalise against (overrides params)"),
        DeclareLaunchArgument("use_sim_time", default_value="",
                              description="true | false: use /clock (a bag played with --clock, a simulator) for "
                                          "the node and RViz (empty: the params file's, else false)"),
        DeclareLaunchArgument("cameras", default_value="",
                              description='rig camera namespaces, "[left, right]" or "left,right" (empty: params '
                                          "file's; none there = the single image topic)"),
        DeclareLaunchArgument("camera_topics", default_value="",
                              description='rig image topics, "left:=/stereo/left/image_raw, right:=..." (remaps '
                                          "<cam>/image, <cam>/image/compressed and <cam>/camera_info beside it)"),
        DeclareLaunchArgument("sync_slop_s", default_value="",
                              description="rig frame grouping slop in seconds (overrides params; default 0.02)"),
        DeclareLaunchArgument("rviz", default_value="false",
                              description="true: start RViz (a config written for this namespace and its cameras)"),
        DeclareLaunchArgument("rviz_config", default_value="",
                              description="RViz config for rviz:=true (empty: generated for the namespace)"),
        OpaqueFunction(function=_actions),
    ])
