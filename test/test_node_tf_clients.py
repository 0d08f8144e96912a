"""da3_node's TF as a navigation stack sees it (issue 19): real DDS, a real-time world, a tf2-like client.

Three processes: the world on the wall clock (test/realtime_robot_world.py: images captured at 10 Hz and published
1 s late, wheel odometry ``wheel_odom -> base_link`` at 50 Hz), the node (oracle backend) and this test, whose
**Nav2-like TF client** is the project's ``TransformBuffer`` fed from /tf and /tf_static (``TfListener``: tf2
semantics, no extrapolation) looking up ``base_link`` in ``odom`` at "now" every 50 ms.

(a) correction mode (``odom -> wheel_odom``, timer at 20 Hz future-dated by 0.5 s): >= 99 % of the lookups after
the first 2 s succeed while the node's stamp-to-publish latency is >= 1 s; every frame has one parent;
(b) direct mode (``odom -> base_link`` stamped with the image stamp after inference): the same lookups fail (what
the README says about Nav2 and this mode), so the client can fail;
(c) camera-only mode with a D435-like /tf_static tree (``camera_link -> camera_color_frame ->
camera_color_optical_frame``): the node publishes ``odom -> camera_link``, no frame gets a second parent.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from node_fixtures import node_command, node_status, write_params
from ros_harness import RELIABLE

from da3_ros.ros_io.tf_listener import TfListener
from da3_ros.ros_io.tf_publisher import TF_QOS
from da3_ros.tf_tree.transform_buffer import TransformBuffer

pytestmark = pytest.mark.ros

HERE = Path(__file__).resolve().parent
NS = "/da3"
FRAMES, FPS, LATENCY_S = 60, 10.0, 1.0
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class RealtimeRun:
    """The real-time world, the node and the client's TF buffer for one test."""

    def __init__(self, ros, launcher, tmp_path, world_args=(), **params):
        self.ros, self.launcher = ros, launcher
        self.received = {topic: ros.subscribe(topic, kind, qos) for topic, kind, qos in (
            ("/tf", TFMessage, TF_QOS), ("/tf_static", TFMessage, TF_STATIC_QOS),
            ("/diagnostics", DiagnosticArray, RELIABLE), (f"{NS}/depth/camera_info", CameraInfo, RELIABLE))}
        self.buffer = TransformBuffer(cache_time_s=30.0)
        self.listener = TfListener(ros.node, self.buffer)
        spec = tmp_path / "oracle.json"
        self.world = launcher.start_python(
            [str(HERE / "realtime_robot_world.py"), "--spec", str(spec), "--frames", str(FRAMES), "--fps", str(FPS),
             "--latency-s", str(LATENCY_S), "--namespace", NS, "--start-file", str(tmp_path / "start"),
             *world_args], name="world")
        end = time.monotonic() + 60
        while not spec.exists() and time.monotonic() < end:
            time.sleep(0.05)
        assert spec.exists(), launcher.log(self.world)
        values = dict(backend="oracle", model_file_path=str(spec), num_threads=1, qos_reliability="reliable",
                      qos_depth=10, diagnostics_period_s=0.25, publish_points=False, min_depth=0.01,
                      max_depth=100.0, confidence_threshold=1.0)
        values.update(params)
        self.node = launcher.start(node_command(write_params(tmp_path, **values), NS), name="da3_node")
        ros.wait_for_node_outputs(f"{NS}/da3_node", check=self.check_alive)
        (tmp_path / "start").write_text("go")

    def log(self) -> str:
        return f"--- node:\n{self.launcher.log(self.node)[-5000:]}\n--- world:\n{self.launcher.log(self.world)[-2000:]}"

    def check_alive(self) -> None:
        assert self.node.poll() is None, self.log()
        assert self.world.poll() is None, self.log()

    def t0_ns(self) -> int:
        def seen():
            self.check_alive()
            return "T0 " in self.launcher.log(self.world)
        self.ros.spin_until(seen, 60.0, "the world's T0")
        line = next(ln for ln in self.launcher.log(self.world).splitlines() if ln.startswith("T0 "))
        return int(line.split()[1])

    def client(self, target: str, source: str, period_s: float = 0.05):
        """Look up ``source`` in ``target`` at "now" every ``period_s`` until the world's DONE + 0.5 s:
        [(now_ns, ok, error)]."""
        out, next_at, done_at = [], time.monotonic(), None
        while done_at is None or time.monotonic() < done_at + 0.5:
            self.ros.spin_once(0.005)
            if time.monotonic() >= next_at:
                next_at += period_s
                now = time.time_ns()
                try:
                    self.buffer.lookup(target, source, now)
                    out.append((now, True, ""))
                except LookupError as exc:
                    out.append((now, False, str(exc)))
            if done_at is None and "DONE" in self.launcher.log(self.world):
                done_at = time.monotonic()
            if len(out) % 20 == 0:
                self.check_alive()
        return out

    def settled(self, lookups, t0_ns: int):
        """The lookups from 2 s after the first image went out to the last image's publication."""
        first = t0_ns + int(LATENCY_S * 1e9)
        last = t0_ns + int(((FRAMES - 1) / FPS + LATENCY_S) * 1e9)
        return [x for x in lookups if first + 2_000_000_000 <= x[0] <= last]

    def diagnostics(self):
        self.ros.spin_until(lambda: node_status(self.received["/diagnostics"])[0] is not None, 20.0, "/diagnostics")
        return node_status(self.received["/diagnostics"])

    def edges(self):
        out = {}
        for topic in ("/tf", "/tf_static"):
            for msg in self.received[topic]:
                for t in msg.transforms:
                    out.setdefault(t.child_frame_id, set()).add(t.header.frame_id)
        return out


def _summary(lookups):
    ok = sum(1 for _, good, _ in lookups if good)
    return ok, len(lookups), next((e for _, good, e in lookups if not good), "")


def test_correction_mode_lookup_at_now_succeeds_despite_a_second_of_latency(ros_node, process_launcher, tmp_path):
    run = RealtimeRun(ros_node, process_launcher, tmp_path, base_frame="base_link", odometry_frame="wheel_odom",
                      scale_source="odometry")
    t0 = run.t0_ns()
    lookups = run.settled(run.client("odom", "base_link"), t0)
    ok, n, error = _summary(lookups)
    values, _ = run.diagnostics()
    latency_ms = float(values["latency_stamp_to_publish_p50_ms"])
    print(f"correction mode: {ok}/{n} lookups of base_link in odom at now succeeded ({ok / max(n, 1):.4f}); "
          f"stamp-to-publish p50 {latency_ms:.0f} ms; {values.get('metric_scale')}; first failure: {error[:200]}")
    assert latency_ms >= 1000.0, values
    assert n >= 60, (n, run.log())          # 60 lookups = 3 s of the client at 20 Hz
    assert ok >= 0.99 * n, (ok, n, error, run.log())
    edges = run.edges()
    assert all(len(p) == 1 for p in edges.values()), edges
    assert edges["wheel_odom"] == {"odom"} and edges["base_link"] == {"wheel_odom"}
    assert edges["camera_optical"] == {"camera_link"} and edges["camera_link"] == {"base_link"}
    # the edge goes out on the timer, future-dated: its stamps run ahead of the wall clock when it was received
    assert "wheel_odom -> base_link" not in values.get("tf_last_error", "")
    assert int(values["processed"]) >= 20 and int(values["dropped_failed"]) == 0, values


def test_direct_mode_lookup_at_now_fails_as_the_readme_says(ros_node, process_launcher, tmp_path):
    # a URDF and no odometry: the node owns odom -> base_link, stamped with the image stamp (>= 1 s old)
    run = RealtimeRun(ros_node, process_launcher, tmp_path, world_args=("--no-odometry-tf",), base_frame="base_link")
    t0 = run.t0_ns()
    lookups = run.settled(run.client("odom", "base_link"), t0)
    ok, n, error = _summary(lookups)
    print(f"direct mode: {ok}/{n} lookups at now succeeded; first failure: {error[:200]}")
    assert n >= 60 and ok <= 0.05 * n and "extrapolation into the future" in error, (ok, n, error)
    values, status = run.diagnostics()
    # no scale source: the pose is in odometry units, published (publish_unscaled auto) and said so
    assert values["publish_unscaled"] == "true (auto)" and int(values["published_not_metres"]) > 0, values
    assert status.message.startswith("outputs not in metres"), status.message
    assert all(len(p) == 1 for p in run.edges().values()), run.edges()


def test_camera_only_mode_keeps_a_driver_tree_with_one_parent_per_frame(ros_node, process_launcher, tmp_path):
    run = RealtimeRun(ros_node, process_launcher, tmp_path, world_args=("--static-tree", "d435", "--no-odometry-tf"))
    t0 = run.t0_ns()
    run.client("odom", "camera_color_optical_frame", period_s=0.2)   # until the world is done
    values, _ = run.diagnostics()
    edges = run.edges()
    assert all(len(p) == 1 for p in edges.values()), edges
    assert edges["camera_link"] == {"odom"}, edges
    assert edges["camera_color_frame"] == {"camera_link"}
    assert edges["camera_color_optical_frame"] == {"camera_color_frame"}
    assert "odom -> camera_link" in values["tf_camera_tree"], values
    assert int(values["processed"]) >= 10, values
    # through the static chain the optical frame is in odom; odom is camera_link at the first frame, so the
    # first pose's optical frame sits at the driver's offset (0, 0.015, 0) with REP 103 odom axes
    T, stamp = run.buffer.lookup_stamped("odom", "camera_color_optical_frame", 0)
    assert stamp > t0 and np.isfinite(T).all()
    # odom is REP 103 (z up): the camera's optical z (forward) stays horizontal on the flat tour, y (down) is -z
    assert abs(T[2, 2]) < 0.2 and T[2, 1] < -0.9, T
