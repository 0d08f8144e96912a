"""Launch da3_node (for a ROS 2 install with launch_ros; here run the entry point directly).

    ros2 launch da3_ros da3.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info engine_file_path:=/path/model.engine rviz:=true

    ros2 launch da3_ros da3.launch.py backend:=onnxruntime model_file_path:=/path/model_n2_196x350.onnx

    # on a robot (README "On your robot"): base_link pose, metric scale from the wheel odometry in TF
    ros2 launch da3_ros da3.launch.py engine_file_path:=/path/model.engine base_frame:=base_link \
        scale_source:=odometry odometry_frame:=wheel_odom

Arguments: params_file, image, camera_info, namespace, engine_file_path, model_file_path,
backend, base_frame, scale_source, pose_source, odometry_frame, publish_tf (true | false), rviz.
The model alone is a complete configuration: config/da3.yaml leaves window_size, network_height,
network_width at 0 and ref_view / variant at "" (= the model file's), so any exported window shape runs
without further arguments. Non-empty launch arguments override the params file.
Valid for launch_ros Jazzy and Kilted (LifecycleNode with explicit name and namespace; the node
configures/activates itself, ``autostart`` parameter, so LifecycleNode's own autostart stays off).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

#: launch arguments that override the params file when non-empty
STRING_OVERRIDES = ("engine_file_path", "model_file_path", "backend", "base_frame", "scale_source", "pose_source",
                    "odometry_frame")


def _node(context):
    overrides = {}
    for name in STRING_OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    publish_tf = LaunchConfiguration("publish_tf").perform(context).strip().lower()
    if publish_tf:
        if publish_tf not in ("true", "false"):
            raise ValueError(f"publish_tf must be true or false, got '{publish_tf}'")
        overrides["publish_tf"] = publish_tf == "true"
    return [LifecycleNode(
        package="da3_ros",
        executable="da3_node",
        name="da3_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("image", LaunchConfiguration("image")),
                    ("image/compressed", [LaunchConfiguration("image"), "/compressed"]),
                    ("camera_info", LaunchConfiguration("camera_info"))],
    )]


def generate_launch_description():
    share = get_package_share_directory("da3_ros")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "da3.yaml"),
                              description="node parameters (config/da3.yaml)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="input image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info", description="camera_info topic"),
        DeclareLaunchArgument("namespace", default_value="da3", description="node namespace"),
        DeclareLaunchArgument("engine_file_path", default_value="", description="TensorRT engine (overrides params)"),
        DeclareLaunchArgument("model_file_path", default_value="", description="ONNX/checkpoint (overrides params)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="tensorrt | onnxruntime | torch (overrides params)"),
        DeclareLaunchArgument("base_frame", default_value="",
                              description="robot body frame, e.g. base_link (overrides params; empty: params file's)"),
        DeclareLaunchArgument("scale_source", default_value="", description="none | odometry (overrides params)"),
        DeclareLaunchArgument("pose_source", default_value="", description="none | tf (overrides params)"),
        DeclareLaunchArgument("odometry_frame", default_value="",
                              description="frame of the robot's odometry, e.g. wheel_odom (overrides params)"),
        DeclareLaunchArgument("publish_tf", default_value="",
                              description="true | false: broadcast the odometry edge (overrides params)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with rviz/da3.rviz"),
        OpaqueFunction(function=_node),
        Node(package="rviz2", executable="rviz2", name="rviz2",
             arguments=["-d", os.path.join(share, "rviz", "da3.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
