"""Every parameter of ``da3_node``: name, default, description (the single source of truth).

``config/da3.yaml`` must list exactly these names (a test checks both directions). Names follow the
Isaac ROS TensorRT node where they overlap (``model_file_path``, ``engine_file_path``,
``force_engine_update``, ``max_workspace_size``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str


PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model / backend -----------------------------------------------------------------------
    ParameterSpec("backend", "onnxruntime", "inference backend: tensorrt | onnxruntime | torch (oracle: demo --oracle only)"),
    ParameterSpec("model_file_path", "", "ONNX file (onnxruntime/tensorrt) or DA3 checkpoint (torch: HF-layout dir, "
                  ".safetensors/.pth, or a repo id)"),
    ParameterSpec("engine_file_path", "", "TensorRT engine (built from model_file_path when missing)"),
    ParameterSpec("force_engine_update", False, "rebuild the TensorRT engine even if it exists"),
    ParameterSpec("max_workspace_size", 4294967296, "TensorRT builder workspace limit in bytes"),
    ParameterSpec("variant", "", "expected model variant (empty = whatever the model file records)"),
    ParameterSpec("device", "cpu", "torch/tensorrt device: cpu | cuda | cuda:N"),
    ParameterSpec("precision", "fp32", "torch/tensorrt precision: fp32 | fp16 | bf16"),
    ParameterSpec("onnx_providers", ["CPUExecutionProvider"], "ONNX Runtime execution providers, in order"),
    ParameterSpec("onnx_fused_attention", True, "ONNX Runtime: run attention as the fused MultiHeadAttention "
                  "contrib op (rewritten in memory at load; the .onnx file is not changed)"),
    ParameterSpec("num_threads", 0, "CPU threads for torch/ONNX Runtime (0 = library default)"),
    ParameterSpec("ref_view", "first", "window reference view: first | saddle_balanced | middle | INDEX "
                  "(must match the exported graph)"),
    ParameterSpec("network_height", 280, "network input height (multiple of 14; must match the engine)"),
    ParameterSpec("network_width", 504, "network input width (multiple of 14; must match the engine)"),
    ParameterSpec("window_size", 4, "views per inference window N = newest frame + N-1 keyframes "
                  "(must equal the engine's N)"),
    # --- keyframes and window alignment ------------------------------------------------------
    ParameterSpec("keyframe_translation", 0.10, "new keyframe when the camera moved this fraction of the "
                  "median scene depth since the last keyframe"),
    ParameterSpec("keyframe_rotation_deg", 10.0, "new keyframe when the camera rotated this much (degrees)"),
    ParameterSpec("keyframe_max_frames", 15, "new keyframe at the latest after this many frames"),
    ParameterSpec("keyframe_max_interval_s", 2.0, "new keyframe at the latest after this many seconds"),
    ParameterSpec("alignment_min_inlier_ratio", 0.6, "reject a window whose alignment has a smaller inlier ratio"),
    ParameterSpec("alignment_max_scale_inconsistency", 1.15, "reject a window whose shared keyframes disagree "
                  "on its scale by more than this factor"),
    ParameterSpec("max_rejected_windows", 5, "re-initialise the trajectory after this many consecutive rejected windows"),
    ParameterSpec("reset_on_time_jump_back", True, "reset window and trajectory when stamps go backwards "
                  "(bag loop)"),
    # --- rate and inputs -----------------------------------------------------------------------
    ParameterSpec("max_rate_hz", 0.0, "maximum processed frame rate (0 = as fast as inference allows)"),
    ParameterSpec("image_transport", "raw", "raw (sensor_msgs/Image on 'image') or compressed "
                  "(sensor_msgs/CompressedImage on 'image/compressed')"),
    ParameterSpec("qos_reliability", "best_effort", "input QoS reliability: best_effort (matches every "
                  "publisher) | reliable"),
    ParameterSpec("qos_depth", 5, "input QoS history depth"),
    ParameterSpec("use_camera_info", True, "use the latest camera_info for intrinsics (else the model's)"),
    # --- outputs -------------------------------------------------------------------------------
    ParameterSpec("publish_depth", True, "publish 'depth' (32FC1) and 'depth/camera_info'"),
    ParameterSpec("publish_confidence", True, "publish 'confidence' (32FC1)"),
    ParameterSpec("publish_points", True, "publish 'points' (organized PointCloud2, camera optical frame)"),
    ParameterSpec("publish_pose", True, "publish 'pose', 'odometry' and 'path'"),
    ParameterSpec("publish_tf", True, "broadcast odom_frame -> camera frame on /tf"),
    ParameterSpec("publish_map_points", False, "publish 'map_points' (keyframe points fused in odom_frame)"),
    ParameterSpec("point_stride", 2, "keep every n-th pixel in rows and columns of 'points'"),
    ParameterSpec("confidence_threshold", 1.0, "drop points with depth confidence below this (DA3 conf >= 1)"),
    ParameterSpec("min_depth", 0.05, "drop points closer than this (output depth units)"),
    ParameterSpec("max_depth", 50.0, "drop points farther than this (output depth units)"),
    ParameterSpec("path_max_length", 1000, "poses kept in 'path'"),
    ParameterSpec("map_voxel_size", 0.05, "voxel size of 'map_points' (odometry units)"),
    ParameterSpec("map_max_points", 200000, "maximum number of points in 'map_points'"),
    # --- frames --------------------------------------------------------------------------------
    ParameterSpec("odom_frame", "odom", "odometry frame of pose/odometry/path/TF (REP 105)"),
    ParameterSpec("camera_frame", "", "camera optical frame (empty = the image's header.frame_id)"),
    # --- node ----------------------------------------------------------------------------------
    ParameterSpec("diagnostics_period_s", 1.0, "period of /diagnostics"),
    ParameterSpec("autostart", True, "configure and activate the lifecycle node at start-up"),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
DEFAULTS = {p.name: p.default for p in PARAMETERS}
