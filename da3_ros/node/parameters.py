"""Every parameter of ``da3_node``: name, default, description, range, runtime behaviour (the single source).

- Defaults of the pipeline/tracker parameters are the ROS-free dataclass defaults (``ProcessorConfig``,
  which takes them from ``KeyframePolicyConfig`` / ``AlignmentConfig`` / ``TrackerConfig``), so library
  users, benchmarks and the node run the same tracker.
- The node declares each one with a ``ParameterDescriptor`` (:func:`descriptor`): description, range,
  choices and ``read_only`` for everything read at configure. Only :data:`RUNTIME_PARAMETERS` can be
  changed while the node runs (``ros2 param set``); they take effect on the next frame.
- ``config/da3.yaml`` is generated from this table: ``python -m da3_ros.node.parameters --yaml
  config/da3.yaml`` (a test checks the committed file equals the generated one).

Names follow the Isaac ROS TensorRT node where they overlap (``model_file_path``, ``engine_file_path``,
``force_engine_update``, ``max_workspace_size``).
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..pipeline.processor_config import ProcessorConfig
from ..pipeline.scale_source import PoseSource, ScaleSource

_P = ProcessorConfig()


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter. ``minimum``/``maximum`` (inclusive) and ``step`` become the descriptor's
    integer/floating-point range; ``choices`` are checked at configure (and on a runtime set); ``empty_ok``:
    "" is accepted besides the choices (it means "choose automatically", see the description).
    ``runtime``: may be changed while the node runs (takes effect on the next frame); every other
    parameter is read-only (read at configure: set it in the params file / launch arguments)."""

    name: str
    default: Any
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    step: Optional[float] = None
    choices: tuple[str, ...] = ()
    runtime: bool = False
    empty_ok: bool = False

    @property
    def read_only(self) -> bool:
        return not self.runtime

    def constraints(self) -> str:
        """Human-readable range/choices/runtime note (descriptor ``additional_constraints`` and YAML)."""
        parts = []
        if self.choices:
            parts.append(("empty or " if self.empty_ok else "") + "one of " + " | ".join(self.choices))
        if self.minimum is not None or self.maximum is not None:
            text = f"range [{_fmt(self.minimum)}, {_fmt(self.maximum)}]"
            if self.step:
                text += f" in steps of {_fmt(self.step)}"
            parts.append(text)
        parts.append("settable at runtime (next frame)" if self.runtime else "read-only")
        return "; ".join(parts)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() and not isinstance(value, float) else repr(value)


NOT_IMPLEMENTED_DEFAULT = "not implemented yet"

PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model / backend -----------------------------------------------------------------------
    ParameterSpec("backend", "", "inference backend; empty = chosen from the file given: engine_file_path -> "
                  "tensorrt, model_file_path .onnx -> onnxruntime, a checkpoint -> torch (oracle: demo --oracle only)",
                  choices=("onnxruntime", "tensorrt", "torch", "oracle"), empty_ok=True),
    ParameterSpec("model_file_path", "", "ONNX file (onnxruntime/tensorrt) or DA3 checkpoint (torch: HF-layout dir, "
                  ".safetensors/.pth, or a repo id)"),
    ParameterSpec("engine_file_path", "", "TensorRT engine (built from model_file_path when missing)"),
    ParameterSpec("force_engine_update", False, "rebuild the TensorRT engine even if it exists"),
    ParameterSpec("max_workspace_size", 4294967296, "TensorRT builder workspace limit in bytes",
                  minimum=0, maximum=2**40),
    ParameterSpec("variant", "", "expected model variant (empty = whatever the model file records)"),
    ParameterSpec("device", "cpu", "torch/tensorrt device: cpu | cuda | cuda:N"),
    ParameterSpec("precision", "fp32", "torch/tensorrt precision", choices=("fp32", "fp16", "bf16")),
    ParameterSpec("onnx_providers", ["CPUExecutionProvider"], "ONNX Runtime execution providers, in order"),
    ParameterSpec("onnx_fused_attention", True, "ONNX Runtime: run attention as the fused MultiHeadAttention "
                  "contrib op (rewritten in memory at load; the .onnx file is not changed)"),
    ParameterSpec("num_threads", 0, "CPU threads for torch/ONNX Runtime (0 = library default)",
                  minimum=0, maximum=1024),
    ParameterSpec("ref_view", "", "window reference view: first | saddle_balanced | middle | INDEX; empty = the "
                  "model's (exported graphs fix it; torch: saddle_balanced)"),
    ParameterSpec("network_height", 0, "network input height in pixels, a multiple of 14; 0 = the model's "
                  "(exported graphs fix it; torch: 280)", minimum=0, maximum=14 * 300, step=14),
    ParameterSpec("network_width", 0, "network input width in pixels, a multiple of 14; 0 = the model's "
                  "(exported graphs fix it; torch: 504)", minimum=0, maximum=14 * 300, step=14),
    ParameterSpec("window_size", _P.window_size, "views per inference window N = newest frame + N-1 keyframes; "
                  "0 = the model's (exported graphs fix it; torch: 4, or 1 for mono/metric models)",
                  minimum=0, maximum=64),
    # --- keyframes and window alignment ------------------------------------------------------
    ParameterSpec("keyframe_translation", _P.keyframe_translation, "new keyframe when the camera moved this "
                  "fraction of the median scene depth since the last keyframe", minimum=0.001, maximum=10.0),
    ParameterSpec("keyframe_rotation_deg", _P.keyframe_rotation_deg, "new keyframe when the camera rotated this "
                  "much (degrees)", minimum=0.1, maximum=180.0),
    ParameterSpec("keyframe_max_frames", _P.keyframe_max_frames, "new keyframe at the latest after this many "
                  "frames (0 = off)", minimum=0, maximum=100000),
    ParameterSpec("keyframe_max_interval_s", _P.keyframe_max_interval_s, "new keyframe at the latest after this "
                  "many seconds (0 = off)", minimum=0.0, maximum=3600.0),
    ParameterSpec("alignment_min_inlier_ratio", _P.alignment_min_inlier_ratio, "reject a window whose alignment "
                  "has a smaller inlier ratio", minimum=0.0, maximum=1.0),
    ParameterSpec("alignment_max_scale_inconsistency", _P.alignment_max_scale_inconsistency, "reject a window "
                  "whose shared keyframes disagree on its scale by more than this factor", minimum=1.0,
                  maximum=100.0),
    ParameterSpec("max_rejected_windows", _P.max_rejected_windows, "re-initialise the trajectory after this many "
                  "consecutive rejected windows", minimum=1, maximum=100000),
    ParameterSpec("reset_on_time_jump_back", _P.reset_on_time_jump_back, "reset window and trajectory when "
                  "stamps go backwards (bag loop)"),
    # --- rate and inputs -----------------------------------------------------------------------
    ParameterSpec("max_rate_hz", 0.0, "maximum processed frame rate (0 = as fast as inference allows)",
                  minimum=0.0, maximum=1000.0, runtime=True),
    ParameterSpec("image_transport", "raw", "raw (sensor_msgs/Image on 'image') or compressed "
                  "(sensor_msgs/CompressedImage on 'image/compressed')", choices=("raw", "compressed")),
    ParameterSpec("qos_reliability", "best_effort", "input QoS reliability (best_effort matches every publisher)",
                  choices=("best_effort", "reliable")),
    ParameterSpec("qos_depth", 5, "input QoS history depth", minimum=1, maximum=1000),
    ParameterSpec("use_camera_info", True, "use the latest camera_info for intrinsics (else the model's)"),
    ParameterSpec("image_rectified", False, "false: the image is raw; it is rectified with camera_info's distortion "
                  "(plumb_bob, rational_polynomial, equidistant) into the pinhole camera of P before the network, "
                  "and the outputs and depth/camera_info (D empty) are in that rectified geometry. true: the image "
                  "is already rectified (image_proc's image_rect): P is its camera, D is ignored"),
    # --- outputs -------------------------------------------------------------------------------
    ParameterSpec("publish_depth", True, "publish 'depth' (32FC1) and 'depth/camera_info'", runtime=True),
    ParameterSpec("publish_confidence", True, "publish 'confidence' (32FC1)", runtime=True),
    ParameterSpec("publish_points", _P.publish_points, "publish 'points' (organized PointCloud2, camera optical "
                  "frame)", runtime=True),
    ParameterSpec("publish_pose", True, "publish 'pose', 'odometry' and 'path'", runtime=True),
    ParameterSpec("publish_tf", True, "broadcast the odometry on /tf: odom_frame -> base_frame (camera frame "
                  "when base_frame is empty; odom_frame -> odometry_frame when those differ and the robot "
                  "odometry is read); false when another node (e.g. an EKF) owns the edge", runtime=True),
    ParameterSpec("publish_unscaled", "auto", "whether outputs that are not in metres go out at all (depth, points, "
                  "map_points, pose, odometry, path, TF): auto = true only when no scale source is configured "
                  "(scale_source: none and no pose_source: tf); false: a robot configured for metres receives metres "
                  "or nothing (withheld outputs are counted on /diagnostics: withheld_not_metres); true: they go out "
                  "in odometry units, with a WARN on /diagnostics (quote it in YAML: \"true\")",
                  choices=("auto", "true", "false")),
    ParameterSpec("publish_map_points", _P.publish_map_points, "publish 'map_points' (keyframe points fused in "
                  "odom_frame, in map_frame while loop closure is active; read-only because the map is built from "
                  "configure on)"),
    ParameterSpec("point_stride", _P.point_stride, "keep every n-th pixel in rows and columns of 'points'",
                  minimum=1, maximum=64, runtime=True),
    ParameterSpec("confidence_threshold", _P.confidence_threshold, "drop points with depth confidence below this "
                  "(DA3 conf >= 1)", minimum=0.0, maximum=1e6, runtime=True),
    ParameterSpec("min_depth", _P.min_depth, "drop points closer than this (output depth units; < max_depth)",
                  minimum=0.0, maximum=1e6, runtime=True),
    ParameterSpec("max_depth", _P.max_depth, "drop points farther than this (output depth units; > min_depth)",
                  minimum=0.0, maximum=1e6, runtime=True),
    ParameterSpec("path_max_length", 1000, "poses kept in 'path'", minimum=1, maximum=10**7),
    ParameterSpec("map_voxel_size", _P.map_voxel_size, "voxel size of 'map_points' (odometry units)",
                  minimum=1e-4, maximum=1e3),
    ParameterSpec("map_max_points", _P.map_max_points, "maximum number of points in 'map_points'",
                  minimum=1, maximum=10**9),
    # --- frames --------------------------------------------------------------------------------
    ParameterSpec("odom_frame", "odom", "odometry frame of pose/odometry/path/TF (REP 105)"),
    ParameterSpec("camera_frame", "", "camera optical frame (empty = the image's header.frame_id)"),
    # --- robot integration (REP 105; README "On your robot") ---------------------------------------
    ParameterSpec("base_frame", "", "robot body frame (e.g. base_link); empty = the camera frame (odom_frame -> "
                  "camera frame). Set: T_base_camera is read from TF and pose/odometry/path/TF are of base_frame"),
    ParameterSpec("scale_source", _P.scale_source.value, "metric scale: none (odometry units unless the model is "
                  "metric or pose_source is tf) | odometry (from odometry_frame -> base_frame in TF) | rig (every "
                  "window's scale from the rig's extrinsics base_frame -> camera frames in TF; needs cameras) | "
                  "rig_odometry (rig and odometry fused by inverse variance)", choices=ScaleSource.choices()),
    ParameterSpec("odometry_frame", "odom", "frame of the robot's own odometry (e.g. odom, wheel_odom) read by "
                  "scale_source: odometry and pose_source: tf; when it differs from odom_frame and publish_tf is "
                  "true, the node publishes odom_frame -> odometry_frame (rtabmap's guess_frame_id convention)"),
    ParameterSpec("pose_source", _P.pose_source.value, "none | tf: feed a pose-conditioned model the window's camera "
                  "poses from TF (odometry_frame -> base_frame at each view's stamp); depth in metres",
                  choices=PoseSource.choices()),
    ParameterSpec("tf_timeout_s", 0.1, "wait for odometry_frame -> base_frame at an image stamp before inference "
                  "(seconds; only a pose-conditioned model needs it then: for the scale alone it is looked up after "
                  "inference, without waiting)",
                  minimum=0.0, maximum=10.0),
    ParameterSpec("tf_mount_timeout_s", 5.0, "longest back-off between two lookups of a missing camera mount "
                  "base_frame -> camera frame (seconds; only the very first lookup waits, up to 1 s and at most "
                  "this: a missing mount drops the frame at once and is looked up again, without waiting, after "
                  "0.1 s, 0.2 s, 0.4 s, ... up to this)", minimum=0.0, maximum=600.0),
    ParameterSpec("tf_publish_rate_hz", 20.0, "rate at which the correction edge odom_frame -> odometry_frame is "
                  "republished on /tf (it exists from the first frame: identity until the scale is known)",
                  minimum=0.1, maximum=1000.0),
    ParameterSpec("transform_tolerance_s", 0.5, "how far into the future the republished correction edge is "
                  "stamped (seconds; as AMCL / slam_toolbox stamp map -> odom), so that a lookup at 'now' through "
                  "odom_frame succeeds", minimum=0.0, maximum=10.0),
    # --- maps and loop closure (issue 20; README "Maps and loop closure") ----------------------------
    ParameterSpec("map_frame", "map", "frame of the loop-closed map: the node publishes map_frame -> odom_frame on "
                  "/tf (REP 105, at tf_publish_rate_hz, stamped now + transform_tolerance_s) and map_points in it "
                  "while loop closure is active; must differ from odom_frame, base_frame and odometry_frame"),
    ParameterSpec("loop_closure", _P.loop_closure, "detect and close loops (place recognition from the network's own "
                  "descriptor, geometric verification, pose graph); a model without descriptor output runs with "
                  "loop closure off (reported on /diagnostics)"),
    ParameterSpec("map_directory", "", "where ~/save_map writes a new map folder (empty = $ROS_HOME/da3_maps, "
                  "ROS_HOME defaulting to ~/.ros)"),
    ParameterSpec("map_load_directory", _P.map_load_directory, "a map folder written by ~/save_map to load at "
                  "configure and relocalise against (empty = start without a map; a bad folder fails configure with "
                  "the reason)"),
    ParameterSpec("reset_keep_odom_frame", False, "~/reset keeps the odometry frame (the next window continues "
                  "from the last pose) instead of starting a new trajectory at the origin"),
    ParameterSpec("cameras", [], "camera namespaces of a rig, e.g. [left, right] (subscribes <cam>/image or "
                  "<cam>/image/compressed and <cam>/camera_info; publishes <cam>/depth, <cam>/depth/camera_info, "
                  "<cam>/confidence, <cam>/points; needs base_frame and a model of N = cameras x (k + 1) views); "
                  "empty = the single 'image' topic"),
    ParameterSpec("sync_slop_s", 0.02, "approximate-time slop for grouping a rig's frames (seconds; a group's stamps "
                  "lie within it)", minimum=0.0, maximum=1.0),
    ParameterSpec("sync_queue_size", 10, "frames kept per rig camera while waiting for partners", minimum=1,
                  maximum=1000),
    # --- node ----------------------------------------------------------------------------------
    ParameterSpec("diagnostics_period_s", 1.0, "period of /diagnostics (seconds)", minimum=0.01, maximum=3600.0),
    ParameterSpec("autostart", True, "configure and activate the lifecycle node at start-up"),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
SPECS = {p.name: p for p in PARAMETERS}
DEFAULTS = {p.name: p.default for p in PARAMETERS}
RUNTIME_PARAMETERS = tuple(p.name for p in PARAMETERS if p.runtime)
#: declared but not implemented: these values fail configure (name -> values; None = any non-default value)
NOT_IMPLEMENTED: dict = {}


#: accepted spellings besides the documented choices (the backend factory's aliases)
CHOICE_ALIASES = {"backend": ("ort", "onnx", "trt")}


def check_settings(values: Mapping[str, Any]) -> list[str]:
    """Problems of a complete set of values (choices, min_depth < max_depth); empty when fine.
    Ranges and types are enforced by the descriptors themselves."""
    problems = []
    for spec in PARAMETERS:
        if spec.choices and spec.name in values:
            value = str(values[spec.name]).strip().lower()
            if spec.empty_ok and not value:
                continue
            if value not in spec.choices and value not in CHOICE_ALIASES.get(spec.name, ()):
                either = "empty or " if spec.empty_ok else ""
                problems.append(f"{spec.name} must be {either}one of {' | '.join(spec.choices)}, "
                                f"got {values[spec.name]!r}")
    if "min_depth" in values and "max_depth" in values and not values["min_depth"] < values["max_depth"]:
        problems.append(f"min_depth ({values['min_depth']}) must be smaller than max_depth ({values['max_depth']})")
    if "odom_frame" in values:   # a complete set (configure / a runtime change): the TF edge rules
        from .robot_frames import robot_frame_problems

        problems += robot_frame_problems(values)
    if "cameras" in values:
        from .rig_cameras import rig_problems

        problems += rig_problems(values)
    return problems


def not_implemented_settings(values: Mapping[str, Any]) -> list[str]:
    """Values of declared parameters that are not implemented yet (configure refuses them)."""
    out = []
    for name, refused in NOT_IMPLEMENTED.items():
        if name not in values or values[name] == DEFAULTS[name]:
            continue
        if refused is None or str(values[name]).strip().lower() in refused:
            out.append(f"{name}: {values[name]!r} is {NOT_IMPLEMENTED_DEFAULT} (leave it at {DEFAULTS[name]!r})")
    return out


# -- ROS descriptors (imported lazily: the table above is usable without ROS) ------------------
def descriptor(spec: ParameterSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of ``spec`` (explicit type: an empty list is STRING_ARRAY)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
             list: ParameterType.PARAMETER_STRING_ARRAY}
    d = ParameterDescriptor(name=spec.name, type=kinds[type(spec.default)], description=spec.description,
                            additional_constraints=spec.constraints(), read_only=spec.read_only)
    if spec.minimum is not None or spec.maximum is not None:
        if isinstance(spec.default, bool) or not isinstance(spec.default, (int, float)):
            raise TypeError(f"{spec.name}: a range needs a numeric parameter")
        if isinstance(spec.default, int):
            d.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum),
                                            step=int(spec.step or 0))]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(spec.minimum),
                                                         to_value=float(spec.maximum), step=float(spec.step or 0))]
    return d


# -- config/da3.yaml ---------------------------------------------------------------------------
YAML_HEADER = """\
# Parameters of da3_node, GENERATED from da3_ros/node/parameters.py -- do not edit by hand; run
#   python -m da3_ros.node.parameters --yaml config/da3.yaml
# (test/test_node_parameters.py checks this file equals the generated one).
# Run: da3_node --ros-args --params-file config/da3.yaml   (engine_file_path or model_file_path is enough:
# backend = "" is chosen from the file; window_size / network_height / network_width = 0 and
# ref_view / variant = "" take the model's values)
# Depth units: odometry units for models that predict poses; metres for metric models with camera_info.
# [read-only] parameters are read at configure (params file / launch arguments; restart to change);
# [settable at runtime] ones (ros2 param set) take effect on the next frame.
"""


def yaml_value(value: Any) -> str:
    """One YAML scalar/flow value that ``yaml.safe_load`` reads back as ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:   # YAML 1.1 reads 1e-05 as a string
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (str, list)):
        return json.dumps(value)   # JSON strings and string lists are YAML flow values
    raise TypeError(f"unsupported parameter value {value!r}")


def generate_yaml(parameters: Sequence[ParameterSpec] = PARAMETERS, width: int = 110) -> str:
    lines = [YAML_HEADER.rstrip("\n"), "/**:", "  ros__parameters:"]
    for spec in parameters:
        comment = f"{spec.description} [{spec.constraints()}]"
        lines += textwrap.wrap(comment, width=width, initial_indent="    # ", subsequent_indent="    #   ",
                               break_on_hyphens=False)
        lines.append(f"    {spec.name}: {yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m da3_ros.node.parameters", description=__doc__.split("\n")[0])
    parser.add_argument("--yaml", nargs="?", const="-", metavar="PATH",
                        help="write config/da3.yaml generated from the declarations (to PATH, default stdout)")
    args = parser.parse_args(argv)
    if args.yaml is None:
        parser.print_help()
        return 2
    text = generate_yaml()
    if args.yaml == "-":
        sys.stdout.write(text)
    else:
        Path(args.yaml).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
