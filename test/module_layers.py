"""The order of the modules inside ``da3_ros/pipeline/`` and ``da3_ros/node/`` (checked by test_import_layering.py).

One line per module: ``"module": layer,  # what it is``. A module may import only modules of its own package
with a LOWER layer (never one of its own layer, never one above), so the imports inside a package have no
cycle and read bottom-up. ``__init__.py`` is not listed: it may import any module of its package, and no
module of the package imports it (import from the module that defines the name).

To add a module: put its line in its package's table with a layer above every module it imports (layer 0 if it
imports none); the test names the line to add, and prints a table consistent with today's imports when an
import breaks the order. A subpackage (a folder with ``__init__.py``) is one entry, by its folder name.
notes/architecture.md ("Module order inside pipeline and node") points here.
"""
from typing import Dict

MODULE_LAYERS: Dict[str, Dict[str, int]] = {
    "pipeline": {
        "depth_unit": 0,        # the unit of the published depth (DEPTH_UNIT_* strings, depth_unit())
        "frame_accounting": 0,  # thread-safe frame counts, drop reasons and stage times for /diagnostics
        "network_input": 0,     # NetworkInputMapping: camera image <-> fixed network input (resize + crop, K)
        "point_cloud": 0,       # OrganizedCloudBuilder: organized cloud from depth at camera resolution
        "rig_sync": 0,          # RigSynchronizer: approximate-time groups of a rig's frames
        "rig_window_scale": 0,  # RigWindowScale: a rig window's metric scale from its known extrinsics
        "scale_source": 0,      # ScaleSource / PoseSource: the one home of scale_source / pose_source
        "voxel_map": 0,         # VoxelMap: bounded, voxel-downsampled map of keyframe points
        "window_dropped": 0,    # WindowDropped: a snapshot refused with a counted drop reason (no_odometry)
        "window_outcome": 0,    # WindowOutcome / CameraOutput: one window's frozen results
        "camera_stream": 1,     # CameraFrame / CameraStream: one camera's input frame and per-camera state
        "loop_closure": 1,      # LoopClosure: the processor's side of loop closure (state, map load / save)
        "map_fusion": 1,        # MapFusionWorker: fuses keyframe clouds into the VoxelMap on its own thread
        "processor_config": 1,  # ProcessorConfig: the window processor's settings
        "rig_accounting": 1,    # RigFrameAccounting: per-camera accounting of a rig (sync drops + outcomes)
        "robot_odometry": 1,    # RobotOdometry: pose-conditioned windows and metric scale from TF odometry
        "window_processor": 2,  # WindowProcessor: one snapshot of C >= 1 cameras in, every output out
    },
    "node": {
        "backend_setup": 0,     # the inference backend from node parameters (through the factory)
        "latest_mailbox": 0,    # LatestMailbox: the one-slot mailbox between callbacks and the worker
        "map_saving": 0,        # ~/save_map's folder and answer, loop-closure /diagnostics keys
        "output_units": 0,      # UnitPolicy: publish_unscaled, which outputs go out while not in metres
        "rig_cameras": 0,       # RigCameras: the cameras parameter (names, topics, frames, rules)
        "robot_frames": 0,      # RobotFrames: REP 105 frames, the TF edges read and published
        "service_thread": 0,    # ServiceThread: a slow service on a helper node and thread of its own
        "camera_inputs": 1,     # the camera input adapters (one camera, a rig) that feed the mailbox
        "parameters": 1,        # every parameter of da3_node: name, default, range, runtime behaviour
        "pose_outputs": 1,      # PoseOutputs: pose, odometry, path and /tf of a robot or a bare camera
        "output_messages": 2,   # the output messages of one window (node and benchmarks)
        "da3_node": 3,          # Da3Node: the lifecycle node (ROS I/O, parameters, threading)
    },
}

assert all(isinstance(layer, int) and layer >= 0 for table in MODULE_LAYERS.values() for layer in table.values()), \
    "every layer is an integer >= 0"
