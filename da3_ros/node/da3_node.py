"""``da3_node``: the ROS 2 lifecycle node (ROS I/O, parameters and threading only).

Lifecycle: *configure* reads the parameters once (an immutable snapshot), creates and checks the inference
backend (a missing or mismatched model/engine fails here with the reason) and every publisher; *activate* creates the
subscriptions and starts the inference worker; *deactivate* / *cleanup* undo that. With
``autostart: true`` the node configures and activates itself at start-up.

Threading: subscription callbacks only store the newest image in a one-slot mailbox (O(1), never
blocking on inference). One worker thread decodes, runs the window inference, aligns and publishes.
When a new image arrives before the worker took the previous one, the newest wins and the older is
counted as dropped ("busy"). Every bad input is logged (throttled), counted, reported on
/diagnostics, and the node keeps running.

Parameters (da3_ros.node.parameters): each is declared with a descriptor (description, range,
read_only). Read-only ones are read at configure. The runtime ones (``RUNTIME_PARAMETERS``: point
filter, max_rate_hz, publish_*) may be set while the node runs: a set-parameters callback validates the
change, a post-set callback stores a new immutable snapshot, and the worker takes the snapshot once per
frame, so a change takes effect on the next frame.

Topics (relative names, remappable): subscribes ``image`` (or ``image/compressed``) and
``camera_info``; publishes ``depth``, ``depth/camera_info``, ``confidence``, ``points``, ``pose``,
``odometry``, ``path``, ``map_points``, plus ``/tf`` and ``/diagnostics``. All outputs carry the input
image's stamp. The messages are built in ``output_messages`` (the node only publishes), and only those of
outputs that are switched on and have a subscriber (``/tf``: whenever ``publish_tf``); the path is kept
either way. Service ``~/reset`` (std_srvs/Trigger) restarts the trajectory; ``~/save_map`` (std_srvs/Trigger) writes
the loop-closure map into a new folder under ``map_directory`` (served on a thread of its own, ``ServiceThread``: a save
blocks neither the inference worker nor the node's executor, its TF timer included).

Robot integration (``base_frame``, ``scale_source``, ``pose_source``; README "On your robot"): the worker
reads the camera mount from TF before each frame (``PoseOutputs.inputs``: never waiting; a missing mount backs
off) and the robot odometry at the image stamp: before inference (waiting ``tf_timeout_s``, outside the frame
lock) only for a pose-conditioned model, else after inference without waiting (``PoseOutputs.late_odometry``,
handed to the processor as a callable). The pose outputs follow REP 105 (``PoseOutputs.messages``: which edge,
twist, covariances, the lost convention); outputs not in metres go out only as ``publish_unscaled`` says
(``output_units.UnitPolicy``: withheld ones are counted, published ones make /diagnostics WARN). One
TF timer republishes the future-dated edges at ``tf_publish_rate_hz``, stamped ``now + transform_tolerance_s``
(``_publish_future_edges``): ``odom_frame -> odometry_frame`` in the correction mode and ``map_frame ->
odom_frame`` while loop closure is active (``WindowProcessor.map_correction``; REP 105, as AMCL / slam_toolbox);
``map_points`` is then in ``map_frame``.
"""
from __future__ import annotations

import threading
import time
from types import MappingProxyType
from typing import Any, Mapping, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from ..geometry.transforms import transform_points
from ..pipeline.camera_stream import CameraFrame
from ..pipeline.depth_unit import DEPTH_UNIT_METRES
from ..pipeline.frame_accounting import FrameAccounting
from ..pipeline.processor_config import ProcessorConfig
from ..pipeline.rig_sync import RigGroup
from ..pipeline.window_dropped import WindowDropped
from ..pipeline.window_processor import WindowProcessor
from ..ros_io import MessageConversionError, compressed_to_rgb, image_to_rgb, ns_to_stamp, transform_stamped
from ..ros_io.camera_info import camera_info_to_camera
from ..ros_io.qos import qos_profile
from ..ros_io.tf_listener import create_transform_lookup
from ..ros_io.tf_publisher import TfBroadcaster
from .backend_setup import create_backend_from_parameters
from .camera_inputs import create_camera_input
from .latest_mailbox import LatestMailbox
from .map_saving import loop_diagnostics, map_save_root, save_map_answer
from .output_messages import CAMERA_FRAME_TOPICS, camera_frame_messages, map_message, odometry_messages
from .output_units import UnitPolicy
from .pose_outputs import PoseOutputs
from .robot_frames import RobotFrameError
from .service_thread import ServiceThread
from .parameters import (PARAMETER_NAMES, PARAMETERS, RUNTIME_PARAMETERS, check_settings, descriptor,
                         not_implemented_settings)

OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class Da3Node(LifecycleNode):
    def __init__(self, node_name: str = "da3_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self._parameter_errors: list[str] = []   # params-file values the descriptors refused (fail configure)
        for spec in PARAMETERS:
            self._declare(spec)
        self._settings: Optional[Mapping[str, Any]] = None   # snapshot read at configure (+ runtime changes)
        self._applied_settings: Optional[Mapping[str, Any]] = None   # the snapshot the worker last applied
        self.add_on_set_parameters_callback(self._check_parameter_change)
        self.add_post_set_parameters_callback(self._store_parameter_change)
        self.accounting = FrameAccounting()
        self._mailbox = LatestMailbox()
        self._worker: Optional[threading.Thread] = None
        self._running = threading.Event()
        self._processor: Optional[WindowProcessor] = None
        self._backend = None
        self._inputs = None                 # the camera input adapter of the mode (one camera or a rig)
        self._pubs: dict = {}               # pose / odometry / path / map_points (once, for the body)
        self._camera_pubs: list = []        # per camera: {output name: publisher}
        self._subs: list = []
        self._tf: Optional[TfBroadcaster] = None
        self._poses: Optional[PoseOutputs] = None
        self._units: Optional[UnitPolicy] = None
        self._tf_timer = None
        self._frame_lock = threading.Lock()   # one frame (process + publish) or one ~/reset at a time
        self._camera_infos: list = [None]  # per camera: the latest valid camera (RawCamera, or PinholeCamera P)
        self._last_accept_time = -1.0
        self._diag_timer = None
        self._configure_error = ""
        self._reset_service = self.create_service(Trigger, "~/reset", self._on_reset)
        # a save can take long: served on a thread of its own, never holding up this node's executor
        self._save_map_service = ServiceThread(self, Trigger, "~/save_map", self._on_save_map)

    # -- parameters ----------------------------------------------------------------------------
    def _declare(self, spec) -> None:
        """Declare with the descriptor. A params-file value that breaks the descriptor (type, range) does not
        kill the process: the default is declared instead and configure fails naming the value."""
        try:
            self._declare_checked(spec)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            self._parameter_errors.append(str(exc))
            self.get_logger().error(f"parameter {spec.name}: {exc}; configure will fail until it is fixed")
            self.declare_parameter(spec.name, spec.default, descriptor(spec), ignore_override=True)

    def _declare_checked(self, spec) -> None:
        desc = descriptor(spec)
        if not isinstance(spec.default, list) or spec.default:
            self.declare_parameter(spec.name, spec.default, desc)
            return
        # an empty default list: rclpy would infer BYTE_ARRAY from [] and a params file's "name: []" arrives
        # without a type, so declare the type explicitly, give the empty default, then make it read-only
        writable = descriptor(spec)
        writable.read_only = False
        self.declare_parameter(spec.name, Parameter.Type(desc.type), writable)
        if self.get_parameter_or(spec.name).type_ == Parameter.Type.NOT_SET:
            self.set_parameters([Parameter(spec.name, Parameter.Type(desc.type), list(spec.default))])
        self.set_descriptor(spec.name, desc)

    def p(self, name: str):
        """The value in the configured snapshot (the declared value before the first configure)."""
        settings = self._settings
        return settings[name] if settings is not None else self.get_parameter(name).value

    def _read_parameters(self) -> Mapping[str, Any]:
        return MappingProxyType({name: self.get_parameter(name).value for name in PARAMETER_NAMES})

    def _check_parameter_change(self, parameters) -> SetParametersResult:
        """Runs after the descriptors' checks (type, range, read_only) and before the values are set."""
        values = {name: self.get_parameter(name).value for name in PARAMETER_NAMES}
        values.update({p.name: p.value for p in parameters if p.name in values})
        problems = check_settings(values)
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        return SetParametersResult(successful=True)

    def _store_parameter_change(self, parameters) -> None:
        """A new immutable snapshot with the changed runtime parameters (the worker picks it up next frame)."""
        settings = self._settings
        if settings is None:
            return   # not configured: configure reads every parameter
        changed = {p.name: p.value for p in parameters if p.name in RUNTIME_PARAMETERS}
        if changed:
            self._settings = MappingProxyType({**settings, **changed})
            self.get_logger().info(f"parameters changed at runtime: {changed}")

    # -- lifecycle -----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        settings = self._read_parameters()
        try:
            problems = self._parameter_errors + check_settings(settings) + not_implemented_settings(settings)
            if problems:
                raise ValueError("; ".join(problems))
            self._backend = create_backend_from_parameters(settings.__getitem__)
            inputs = create_camera_input(settings, self._on_bad_stamp)
            config = ProcessorConfig.from_parameters(settings.__getitem__)
            self._processor = WindowProcessor(self._backend, config, inputs.num_cameras,
                                              on_map_update=self._publish_map)
            self._inputs = inputs
        except Exception as exc:   # BackendUnavailableError, EngineMismatchError, FileNotFoundError, ValueError, ...
            self._configure_error = f"{type(exc).__name__}: {exc}"
            self.accounting.on_event("configure_failures", self._configure_error, error=True)
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._ensure_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self._settings = self._applied_settings = settings
        self._configure_error = ""
        self._log_configuration(settings)
        self._create_publishers(settings)
        if self._tf is None:
            self._tf = TfBroadcaster(self)
        self._units = UnitPolicy(settings["publish_unscaled"], self._processor.scale_expected)
        self._poses = PoseOutputs(settings, lambda: create_transform_lookup(self, cache_time_s=10.0),
                                  scale_expected=self._processor.scale_expected, units=self._units)
        # loop closure asked for: whether it is active is known at the first window (the model's descriptor)
        republishes = self._poses.frame_settings.correction_mode or bool(settings["loop_closure"])
        if republishes and self._tf_timer is None:
            self._tf_timer = self.create_timer(1.0 / float(settings["tf_publish_rate_hz"]), self._publish_future_edges)
        self._ensure_diagnostics()
        return TransitionCallbackReturn.SUCCESS

    def _log_configuration(self, settings: Mapping[str, Any]) -> None:
        desc = self._backend.describe()
        inputs = self._inputs
        if inputs.num_cameras > 1:
            self.get_logger().info(f"camera rig {list(inputs.cameras.names)}: window of {inputs.num_cameras} cameras "
                                   f"x {self._processor.snapshots} snapshots, sync slop {settings['sync_slop_s']} s")
        self.get_logger().info(
            f"backend {desc.get('backend')} ready: variant {desc.get('variant')}, window N={desc.get('views')} "
            f"at {desc.get('height')}x{desc.get('width')}, ref_view {desc.get('ref_view')}; depth unit "
            f"'{self._processor.depth_unit}'")

    def _create_publishers(self, settings: Mapping[str, Any]) -> None:
        """Every publisher exists from configure on (the runtime publish_* switches only gate publishing): per
        camera its outputs (one camera: today's topic names; a rig: in each camera's namespace), and pose /
        odometry / path / map once, for the body."""
        kinds = {"depth": Image, "depth_info": CameraInfo, "confidence": Image, "points": PointCloud2}
        inputs = self._inputs
        self._camera_pubs = [{name: self.create_lifecycle_publisher(kinds[name], inputs.topic(c, suffix), OUTPUT_QOS)
                              for name, suffix in CAMERA_FRAME_TOPICS.items()} for c in range(inputs.num_cameras)]
        pubs = {"pose": self.create_lifecycle_publisher(PoseStamped, "pose", OUTPUT_QOS),
                "odometry": self.create_lifecycle_publisher(Odometry, "odometry", OUTPUT_QOS),
                "path": self.create_lifecycle_publisher(Path, "path", OUTPUT_QOS)}
        if settings["publish_map_points"]:
            pubs["map_points"] = self.create_lifecycle_publisher(PointCloud2, "map_points", OUTPUT_QOS)
        self._pubs = pubs

    def destroy_node(self):
        """Stop the service thread, then destroy the node."""
        self._save_map_service.close()
        super().destroy_node()

    def _ensure_diagnostics(self):
        if self._diag_timer is None:
            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self._diag_timer = self.create_timer(float(self.p("diagnostics_period_s")), self.publish_diagnostics)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = qos_profile(self.p("qos_reliability"), int(self.p("qos_depth")))
        transport = str(self.p("image_transport")).strip().lower()
        if transport not in ("raw", "compressed"):
            self.get_logger().error(f"image_transport must be raw or compressed, got '{transport}'")
            return TransitionCallbackReturn.FAILURE
        n = self._inputs.num_cameras
        if len(self._camera_infos) != n:   # one per camera (kept across re-activation)
            self._camera_infos = [None] * n
        self._subs += self._inputs.subscribe(self, qos, transport, self._offer, self._on_camera_info,
                                             bool(self.p("use_camera_info")))
        self._running.set()
        self._worker = threading.Thread(target=self._work, name="da3_inference", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._inputs is not None:
            self._inputs.flush()   # rig frames still waiting for partners: dropped as "flushed" (accounting balances)
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in [*self._pubs.values(), *(p for pubs in self._camera_pubs for p in pubs.values())]:
            self.destroy_lifecycle_publisher(pub)
        self._pubs, self._camera_pubs = {}, []
        self._inputs = None
        self._close_pipeline()
        if self._tf_timer is not None:
            self.destroy_timer(self._tf_timer)
            self._tf_timer = None
        if self._poses is not None:
            self._poses.destroy()
        self._backend = self._processor = self._poses = self._units = None
        self._settings = self._applied_settings = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._close_pipeline()
        return TransitionCallbackReturn.SUCCESS

    def _close_pipeline(self) -> None:
        if self._processor is not None:
            self._processor.close()     # fuses the queued keyframes, stops the map thread
        if self._backend is not None:
            self._backend.close()

    def _stop_worker(self):
        self._running.clear()
        replaced = self._mailbox.close()
        if replaced is not None:
            self._dropped("busy")   # the snapshot still waiting in the mailbox
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None
        self._mailbox = LatestMailbox()

    # -- callbacks (never block) ---------------------------------------------------------------
    def _offer(self, group: RigGroup) -> None:
        """A snapshot (one camera's image, or a rig group) into the worker's mailbox: counted, rate limited
        (``max_rate_hz``, the current snapshot), the newest wins (a replaced one is dropped "busy"). Never blocks."""
        self.accounting.on_received()
        now = time.monotonic()
        max_rate = float(self.p("max_rate_hz"))
        if max_rate > 0 and self._last_accept_time >= 0 and now - self._last_accept_time < 1.0 / max_rate:
            self._dropped("rate")
            return
        self._last_accept_time = now
        if self._mailbox.put((group, now)) is not None:
            self._dropped("busy")

    def _dropped(self, reason: str, error: str = "") -> None:
        """Count a snapshot as dropped (for every camera of a rig)."""
        self.accounting.on_dropped(reason, error)
        if self._inputs is not None:
            self._inputs.on_outcome(reason)

    def _on_bad_stamp(self, camera: int, error: str) -> None:
        """A rig image whose stamp the synchroniser refused (it never entered it: counted here)."""
        name = self._inputs.cameras.names[camera]
        self.accounting.on_event("bad_rig_stamp", f"{name}: {error}", error=True)
        self.get_logger().warning(f"dropping {name} image: {error}", throttle_duration_sec=5.0)

    def _on_camera_info(self, msg: CameraInfo, camera: int = 0) -> None:
        """The latest valid camera_info of a camera (``camera``: rig index; checked at the network's input size too);
        a bad one is reported with its reason and ignored (the last good one stays)."""
        backend = self._backend
        try:
            self._camera_infos[camera] = camera_info_to_camera(
                msg, image_rectified=bool(self.p("image_rectified")),
                network_wh=None if backend is None else (backend.width, backend.height))
        except MessageConversionError as exc:
            topic = self._inputs.topic(camera, "camera_info")
            self.accounting.on_event("bad_camera_info", f"{topic}: {getattr(exc, 'reason', 'bad')}: {exc}",
                                     error=True)
            self.get_logger().warning(f"ignoring {topic}: {exc}", throttle_duration_sec=5.0)

    # -- worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        while self._running.is_set():
            item = self._mailbox.take(timeout=0.2)
            if item is None:
                continue
            group, received_at = item
            try:
                self._process(group, received_at)
            except MessageConversionError as exc:
                self._dropped("bad_input", f"image: {exc}")
                self.get_logger().warning(f"dropping image: {exc}", throttle_duration_sec=5.0)
            except WindowDropped as exc:   # e.g. no_odometry: counted with its reason, nothing published
                self._dropped(exc.reason, exc.message)
                self.get_logger().warning(f"dropping {self._inputs.what}: {exc.message}", throttle_duration_sec=5.0)
            except Exception as exc:  # keep running whatever one frame does
                self._dropped("failed", f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def _on_reset(self, request, response):
        """``~/reset``: restart the trajectory now, between two frames (``reset_keep_odom_frame``: keep the
        odometry frame, the next window continues from the last pose)."""
        processor, poses = self._processor, self._poses
        if processor is None or poses is None:
            response.success, response.message = False, "not configured"
            return response
        keep = bool(self.p("reset_keep_odom_frame"))
        with self._frame_lock:
            processor.reset("~/reset", keep_odom_frame=keep)
            if not keep:
                poses.reset()
        self.accounting.on_event("reset", "~/reset")
        response.success = True
        response.message = ("trajectory reset: odometry frame kept, the next window continues from the last pose"
                            if keep else "trajectory reset: a new trajectory starts at the next frame")
        self.get_logger().info(response.message)
        return response

    def _tf_inputs(self, camera_frames, stamps_ns):
        """(mounts T_base_cam per camera frame, the robot odometry ``T_odometry_base`` per camera at its own stamp
        ``stamps_ns[c]`` (None where unknown): a list, None, or a callable giving the list that the processor calls
        after inference) from TF, or None when a mount is missing (the snapshot is then counted as failed; the
        mount lookup backs off, never waits). Only a pose-conditioned model's odometry is read here, waiting up to
        ``tf_timeout_s``: call outside the frame lock (a ~/reset call must not wait for TF). The first frame is
        the body's reference camera (``PoseOutputs``); a camera sharing its stamp shares its odometry pose."""
        poses = self._poses
        robot = self._processor.robot
        before = robot is not None and robot.pose_conditioned
        try:
            T_base_cam0, T_odometry_base = poses.inputs(camera_frames[0], stamps_ns[0], odometry=before)
            mounts = [T_base_cam0] + [poses.frames.T_base_cam(f) for f in camera_frames[1:]]
        except RobotFrameError as exc:
            self.accounting.on_event("tf_mount_missing", str(exc), error=True)
            self._dropped("failed", str(exc))
            self.get_logger().error(f"dropping {self._inputs.what}: {exc}", throttle_duration_sec=5.0)
            return None
        if before:
            T_odometry_base = self._camera_odometry(T_odometry_base, stamps_ns, poses.frames.odometry_pose)
        elif poses.frame_settings.uses_odometry:
            def T_odometry_base():   # called by the processor after inference, in this thread
                return self._camera_odometry(poses.late_odometry(stamps_ns[0]), stamps_ns, poses.late_odometry)
        for warning in poses.take_tf_warnings():
            self.accounting.on_event("tf_reparented", warning)
            self.get_logger().warning(warning, throttle_duration_sec=5.0)
        return mounts, T_odometry_base

    def _camera_odometry(self, T_odometry_base, stamps_ns, lookup) -> list:
        """The odometry at every camera's stamp given the reference camera's (``lookup(stamp_ns)`` for the other
        stamps of a rig); a failed reference lookup is counted and logged."""
        self._odometry_looked_up(T_odometry_base)
        return [T_odometry_base] + [T_odometry_base if s == stamps_ns[0] or T_odometry_base is None else lookup(s)
                                    for s in stamps_ns[1:]]

    def _odometry_looked_up(self, T_odometry_base):
        """Count and log a failed robot odometry lookup; returns ``T_odometry_base``."""
        poses = self._poses
        if T_odometry_base is None and poses.frame_settings.uses_odometry:
            self.accounting.on_event("odometry_lookup_failed", poses.frames.last_error)
            self.get_logger().warning(poses.frames.last_error, throttle_duration_sec=5.0)
        return T_odometry_base

    def _publish_future_edges(self) -> None:
        """TF timer, the one home of future-dated republishing: the latest correction edge ``odom_frame ->
        odometry_frame`` (correction mode) and ``map_frame -> odom_frame`` (loop closure active), stamped ``now +
        transform_tolerance_s`` (AMCL / slam_toolbox publish map -> odom so), whenever ``publish_tf``."""
        poses, settings, processor = self._poses, self._settings, self._processor
        if poses is None or settings is None or processor is None or not settings["publish_tf"] or self._tf is None:
            return
        edges = poses.republished_edges(processor.map_correction(), processor.metres_per_unit)
        if not edges:
            return
        tolerance_ns = int(round(float(settings["transform_tolerance_s"]) * 1e9))
        stamp = ns_to_stamp(self.get_clock().now().nanoseconds + tolerance_ns)
        self._tf.send([transform_stamped(T, stamp, parent, child) for parent, child, T in edges])

    def _on_save_map(self, request, response):
        """``~/save_map`` (on its ``ServiceThread``): the processor writes its map into a new folder under
        ``map_directory`` while the inference worker and this node's executor go on; success and the folder's
        absolute path, or the reason."""
        processor = self._processor
        root = map_save_root(self.p("map_directory"))
        response.success, response.message = save_map_answer(processor, root)
        if response.success:
            self.accounting.on_event("maps_saved", response.message)
            self.get_logger().info(f"~/save_map: map saved to {response.message}")
        else:
            self.get_logger().warning(f"~/save_map: {response.message}")
        return response

    def _apply_settings(self, settings) -> None:
        """Hand changed runtime parameters to the processor (between frames, under the frame lock)."""
        if settings is not self._applied_settings:
            self._processor.apply_runtime_config(ProcessorConfig.from_parameters(settings.__getitem__))
            self._applied_settings = settings

    def _process(self, group: RigGroup, received_at: float) -> None:
        """One snapshot: decode every camera, read the mounts and the odometry from TF, run the window, publish
        every camera's outputs (own stamp, own frame) and the body pose (the reference camera's stamp)."""
        settings = self._settings   # one snapshot per frame (runtime parameter changes apply from here)
        t0 = time.perf_counter()
        msgs = group.payloads
        rgbs = [compressed_to_rgb(m) if isinstance(m, CompressedImage) else image_to_rgb(m) for m in msgs]
        decode_s = time.perf_counter() - t0
        frames = [self._inputs.frame(c, m.header.frame_id) for c, m in enumerate(msgs)]
        stamps_ns = list(group.stamps_ns)
        inputs = self._tf_inputs(frames, stamps_ns)
        if inputs is None:
            return
        mounts, T_odometry_base = inputs
        use_info = settings["use_camera_info"]
        snapshot = [CameraFrame(rgb, stamp, self._camera_infos[c] if use_info else None, mounts[c])
                    for c, (rgb, stamp) in enumerate(zip(rgbs, stamps_ns))]
        with self._frame_lock:
            self._apply_settings(settings)
            result = self._processor.process(snapshot, T_odometry_base=T_odometry_base,
                                             odometry_at=self._poses.earlier_odometry)
            for event in result.events:
                self.accounting.on_event(event.name, event.message)
                self.get_logger().warning(event.message, throttle_duration_sec=5.0)
            t1 = time.perf_counter()
            for camera, frame, msg, pubs in zip(result.cameras, frames, msgs, self._camera_pubs):
                self._publish_camera(camera, Header(stamp=msg.header.stamp, frame_id=frame), pubs, settings)
            self._publish_poses(result, msgs[0].header.stamp, frames[0], settings)
        self._inputs.on_outcome("processed")
        stages = {"decode": decode_s, **result.stage_seconds, "publish": time.perf_counter() - t1,
                  "latency_receive_to_publish": time.monotonic() - received_at}
        now_ns = self.get_clock().now().nanoseconds
        stages["latency_stamp_to_publish"] = max(0.0, (now_ns - max(stamps_ns)) * 1e-9)
        self.accounting.on_processed(stages)

    def _publish_map(self, stamp_ns: int, points, colours) -> None:
        """Map-thread callback after each fused keyframe: publish ``map_points`` if anyone subscribes."""
        pub, settings, units, processor = self._pubs.get("map_points"), self._settings, self._units, self._processor
        if pub is None or settings is None or pub.get_subscription_count() == 0:
            return
        if units is not None and processor is not None and not units.allows(
                processor.metres_per_unit is not None or processor.depth_unit == DEPTH_UNIT_METRES, "map_points",
                processor.depth_unit):
            return
        frame = settings["odom_frame"]
        if processor is not None and processor.map_correction() is not None:   # loop closure: the map frame
            frame = settings["map_frame"]
            T = self._poses.map_points_transform() if self._poses is not None else None
            if T is not None:
                points = transform_points(T, points).astype(np.float32)   # on the map thread, once per keyframe
        pub.publish(map_message(points, colours, ns_to_stamp(stamp_ns), frame))

    @staticmethod
    def _subscribed(pubs: dict, name: str) -> bool:
        return name in pubs and pubs[name].get_subscription_count() > 0

    def _publish_camera(self, camera, header: Header, pubs: dict, settings: Mapping[str, Any]) -> None:
        """One camera's depth, depth/camera_info, confidence and points (its frame and stamp in ``header``): those
        switched on (publish_*) and subscribed to (messages nobody receives are not built)."""
        unit = self._processor.depth_unit
        metric = unit == DEPTH_UNIT_METRES
        depth = settings["publish_depth"] and self._subscribed(pubs, "depth") and self._units.allows(
            metric, "depth", unit)
        points = settings["publish_points"] and self._subscribed(pubs, "points") and self._units.allows(
            metric, "points", unit)
        # depth/camera_info and confidence carry no length: they go out whatever the unit
        messages = camera_frame_messages(camera, header, depth=depth,
                                         depth_info=settings["publish_depth"] and self._subscribed(pubs, "depth_info"),
                                         confidence=settings["publish_confidence"] and self._subscribed(
                                             pubs, "confidence"),
                                         points=points)
        for name, message in messages.items():
            pubs[name].publish(message)

    def _publish_poses(self, result, stamp, camera_frame: str, settings: Mapping[str, Any]) -> None:
        """pose, odometry, path and the TF edge of the body (``PoseOutputs``: the REP 105 conventions); TF whenever
        ``publish_tf`` (a /tf listener is not counted), the others when switched on and subscribed to."""
        pose = settings["publish_pose"]
        messages = odometry_messages(result, stamp, settings["odom_frame"], camera_frame, self._poses,
                                     pose=pose and self._subscribed(self._pubs, "pose"),
                                     odometry_msg=pose and self._subscribed(self._pubs, "odometry"),
                                     path_msg=pose and self._subscribed(self._pubs, "path"),
                                     tf=bool(settings["publish_tf"]))
        tf = messages.pop("tf", None)
        for name, message in messages.items():
            self._pubs[name].publish(message)
        if tf is not None:
            self._tf.send([tf])

    # -- diagnostics ---------------------------------------------------------------------------
    def _warnings(self, snap: Mapping[str, Any], values: Mapping[str, Any]) -> list:
        """What /diagnostics warns about, most important first (its message joins them; WARN when any): tracking
        lost, bad input or failed frames, outputs not in metres, a camera losing much of its image to the crop."""
        warnings = []
        status = self._processor.tracking_status
        if status is not None and status.warn:
            warnings.append(f"lost: {status.reason}")
        if snap["dropped_bad_input"] or snap["dropped_failed"]:
            warnings.append("bad input or failed frames (see last_error)")
        if self._units is not None and self._units.unscaled_published and self._processor.depth_unit != \
                DEPTH_UNIT_METRES:
            warnings.append(f"outputs not in metres: {self._processor.depth_unit} (publish_unscaled "
                            f"{self._units.setting}; README 'On your robot')")
        warnings += [str(v) for k, v in values.items() if k.endswith("crop_warning")]
        return warnings

    def publish_diagnostics(self) -> None:
        snap = self.accounting.snapshot()
        status = DiagnosticStatus(name=f"{self.get_name()}: inference", hardware_id=self.get_fully_qualified_name())
        values = dict(snap)
        if self._poses is not None:
            values.update(self._poses.describe())
        if self._backend is not None:
            values.update({f"backend_{k}": v for k, v in self._backend.describe().items()})
        if self._processor is not None:
            values.update(self._processor.describe())
            values.update(loop_diagnostics(self._processor.loop_stats()))
        values["window_size"] = self._backend.views if self._backend is not None else self.p("window_size")
        if self._inputs is not None:
            values.update(self._inputs.describe())
        if self._configure_error:
            status.level, status.message = DiagnosticStatus.ERROR, f"not configured: {self._configure_error}"
        elif self._processor is None:
            status.level, status.message = DiagnosticStatus.WARN, "not configured"
        else:
            warnings = self._warnings(snap, values)
            status.level = DiagnosticStatus.WARN if warnings else DiagnosticStatus.OK
            status.message = "; ".join(warnings) if warnings else "running"
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                               status=[status]))


def main(args=None) -> int:
    rclpy.init(args=args)
    node = Da3Node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        if node.p("autostart"):
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: configure failed; staying unconfigured (fix the parameters "
                                        "in the params file / launch arguments and restart the node)")
            elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: activate failed")
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_worker()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
