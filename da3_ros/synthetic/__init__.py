"""Synthetic ground-truth world for tests and the demo (ROS-free, NumPy + OpenCV only).

- ``room_scene``: a textured box-shaped room with axis-aligned boxes (the scene description).
- ``renderer``: vectorised ray casting of that scene -> RGB uint8 + metric depth (z along the
  optical axis), for any pinhole ``K`` and camera-to-world pose ``T_world_cam``.
- ``camera_paths``: named, deterministic camera paths (``room_tour``: forward motion, turning,
  a stop, a pure rotation; 300 frames).
- ``sequence``: ``SyntheticSequence`` = scene + path + intrinsics, rendered lazily per frame.
- ``robot``: ``SyntheticRobot``: a base_link trajectory on the floor, the static base_link ->
  camera_link -> camera_optical mount, the camera's ground-truth path and a simulated wheel odometry.
- ``window_oracle``: per-window "model predictions" made from the ground truth (random window
  scale, depth/pose noise, low-confidence regions, occasional garbage windows).
- ``rig``: a multi-camera rig (``CameraRig``, presets ``stereo_pair`` / ``ring`` / ``rig_preset``) moving along
  a path, every camera rendered with ground truth and its own stamps (``RigSequence``; ``RigWorld`` rebuilds
  one exactly; ``RigViewSequence`` flattens it into views for the window oracle).

World frame of the scene: x, y horizontal, z up, metres. Cameras use OpenCV optical axes.
"""

from .camera_paths import PATH_NAMES, CameraPath, camera_path
from .renderer import Renderer, pinhole_intrinsics
from .room_scene import AxisAlignedBox, RoomScene, default_room
from .sequence import SyntheticFrame, SyntheticSequence
from .window_oracle import OracleNoise, OracleWindow, WindowOracle
from .robot import SyntheticRobot, WheelOdometry, WheelOdometryConfig
from .rig import (CameraRig, RigCamera, RigSequence, RigViewSequence, RigWorld, optical_mount, rig_preset, ring,
                  stereo_pair)

__all__ = ["PATH_NAMES", "CameraPath", "camera_path", "Renderer", "pinhole_intrinsics", "AxisAlignedBox",
           "RoomScene", "default_room", "SyntheticFrame", "SyntheticSequence", "OracleNoise", "OracleWindow",
           "WindowOracle", "SyntheticRobot", "WheelOdometry", "WheelOdometryConfig",
           "CameraRig", "RigCamera", "RigSequence", "RigViewSequence", "RigWorld", "optical_mount", "rig_preset",
           "ring", "stereo_pair"]
