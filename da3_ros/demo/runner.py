"""Orchestration of the demo: input -> model (export cached) -> da3_node process -> player/recorder
over DDS -> report. See ``da3_ros.cli.demo_main`` for the command line."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml
from tqdm import tqdm

from .player_recorder import PlayerRecorder, output_topics
from .report import build_report
from .sources import DemoInput, bag_input, images_input, synthetic_input, video_input

NS = "/da3"
RANDOM_BANNER = ("RANDOM WEIGHTS: no DA3 checkpoint was given and the Hugging Face hub is unreachable, so the "
                 "network has random weights and its depth and poses are meaningless. Download "
                 "depth-anything/DA3-SMALL (config.json + model.safetensors) and pass --checkpoint DIR.")
ORACLE_BANNER = ("ORACLE MODE (not the default): the network is replaced by the synthetic world's ground-truth "
                 "window oracle with noise; this checks the pipeline around the model (DDS, node, tracker, "
                 "outputs), not the model.")


@dataclass
class DemoOptions:
    output: Path
    video: Optional[str] = None
    images: Optional[str] = None
    bag: Optional[str] = None
    checkpoint: Optional[str] = None
    model: Optional[str] = None          # an already exported .onnx (skips export)
    oracle: bool = False
    frames: int = 100
    stride: int = 0                       # 0 = 3 for the synthetic input, 1 otherwise
    rate_hz: float = 2.0
    views: int = 4
    network_height: int = 280
    network_width: int = 0                # 0 = from the input's aspect ratio
    cache_dir: Path = Path(".cache/da3_ros")
    num_threads: int = 2
    synthetic_width: int = 320
    synthetic_height: int = 240
    camera_path: str = "robot_tour"       # synthetic input: the robot (with TF) or a camera path, e.g. room_tour
    quiet: bool = False


def _say(opts: DemoOptions, msg: str) -> None:
    if not opts.quiet:
        print(f"[da3-demo] {msg}", flush=True)


def load_input(opts: DemoOptions) -> DemoInput:
    stride = opts.stride or (1 if (opts.video or opts.images or opts.bag) else 3)
    if sum(bool(x) for x in (opts.video, opts.images, opts.bag)) > 1:
        raise ValueError("give at most one of --video, --images, --bag")
    if opts.oracle and (opts.video or opts.images or opts.bag):
        raise ValueError("--oracle works only on the synthetic input (it needs ground truth)")
    if opts.video:
        return video_input(opts.video, opts.frames, stride)
    if opts.images:
        return images_input(opts.images, opts.frames, stride)
    if opts.bag:
        return bag_input(opts.bag, opts.frames, stride)
    bar = tqdm(total=opts.frames, desc="rendering synthetic scene", disable=opts.quiet, leave=False)
    data = synthetic_input(opts.frames, stride, width=opts.synthetic_width, height=opts.synthetic_height,
                           camera_path=opts.camera_path, progress=lambda: bar.update(1))
    bar.close()
    return data


def _network_width(opts: DemoOptions, width: int, height: int) -> int:
    if opts.network_width:
        return opts.network_width
    return max(14, int(round(opts.network_height * width / height / 14.0)) * 14)


def prepare_model(opts: DemoOptions, demo_input: DemoInput, out: Path) -> tuple[dict, dict, list]:
    """-> (node parameter overrides, report metadata, banners)."""
    h, w = demo_input.frames[0].rgb.shape[:2]
    if opts.oracle:
        from ..backends.oracle_backend import write_oracle_spec

        robot = demo_input.robot
        spec = write_oracle_spec(out / "oracle_spec.json", {f.index: f.rgb for f in demo_input.frames},
                                 camera_path="robot_tour" if robot is not None else opts.camera_path,
                                 width=w, height=h, views=opts.views,
                                 robot_fps=robot.fps if robot is not None else None)
        params = dict(backend="oracle", model_file_path=str(spec))   # the window comes from the spec
        return params, {"model": "oracle (ground truth + noise)", "backend": "oracle", "views": opts.views,
                        "network": f"{h}x{w}", "ref_view": "first"}, [ORACLE_BANNER]
    banners = []
    if opts.model:
        onnx_path = Path(opts.model)
        weights = f"exported model {onnx_path}"
    else:
        height, width = opts.network_height, _network_width(opts, w, h)
        onnx_path, weights, banner = export_cached(opts, height, width)
        if banner:
            banners.append(banner)
    from ..artifact.sidecar import read_sidecar

    side = read_sidecar(onnx_path)
    params = dict(backend="onnxruntime", model_file_path=str(onnx_path))   # the window comes from the sidecar
    meta = {"model": f"{side.variant} ({weights})", "backend": "onnxruntime", "views": side.views,
            "network": f"{side.height}x{side.width}", "ref_view": side.ref_view, "onnx": str(onnx_path)}
    return params, meta, banners


def export_cached(opts: DemoOptions, height: int, width: int):
    """Export the checkpoint (or random-weight DA3-Small) once; later runs reuse the cached ONNX."""
    from ..export.onnx_export import export_model_to_onnx
    from ..artifact.sidecar import checkpoint_sha256

    cache = Path(opts.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    banner = None
    model = None
    if opts.checkpoint:
        from ..model import load_model
        from ..model.checkpoint import resolve_checkpoint

        weights_path, _ = resolve_checkpoint(opts.checkpoint)
        key, weights = checkpoint_sha256(weights_path)[:12], f"weights {opts.checkpoint}"
        loader = lambda: load_model(opts.checkpoint)  # noqa: E731
    else:
        from ..model import CheckpointError, load_model

        try:
            model = load_model("depth-anything/DA3-SMALL")
            key, weights = "hub-da3-small", "weights depth-anything/DA3-SMALL (hub)"
        except (CheckpointError, OSError) as exc:
            _say(opts, f"no checkpoint: {str(exc).splitlines()[0]}")
            key, weights, banner = "random-da3-small-seed0", "RANDOM weights, seed 0", RANDOM_BANNER
        loader = None
    path = cache / f"da3_{key}_n{opts.views}_{height}x{width}_first.onnx"
    if path.exists() and path.with_suffix(".json").exists():
        _say(opts, f"using cached export {path}")
        return path, weights, banner
    if model is None:
        if loader is not None:
            model = loader()
        else:
            import torch

            from ..model import build_model

            torch.manual_seed(0)
            model = build_model("da3-small")
    _say(opts, f"exporting {weights} to ONNX (N={opts.views}, {height}x{width}); cached for later runs")
    export_model_to_onnx(model, path, views=opts.views, height=height, width=width, ref_view="first",
                         checkpoint=opts.checkpoint or "", checkpoint_digest=key, verbose=not opts.quiet)
    return path, weights, banner


def _node_command(params_file: Path) -> list:
    exe = shutil.which("da3_node", path=str(Path(sys.executable).parent)) or shutil.which("da3_node")
    if exe is None:
        raise RuntimeError("da3_node is not installed (run `make env`)")
    return [exe, "--ros-args", "--params-file", str(params_file), "-r", f"__ns:={NS}"]


def robot_parameters(robot) -> dict:
    """The node's robot integration for the synthetic robot (README "On your robot"): poses of base_link,
    metric scale from the wheel odometry, and the node publishes odom -> wheel_odom (so base_link keeps its
    one parent, the wheel odometry's wheel_odom -> base_link)."""
    # publish_unscaled: the demo shows every frame, also before the scale is known (odometry units, a WARN on
    # /diagnostics and in the report); a robot configured for metres leaves it at auto and receives only metres
    return dict(base_frame=robot.base_frame, odometry_frame=robot.odometry_frame, odom_frame="odom",
                scale_source="odometry", publish_tf=True, publish_unscaled="true")


def write_params(out: Path, overrides: dict, opts: DemoOptions) -> Path:
    config = Path(__file__).resolve().parents[2] / "config" / "da3.yaml"
    if config.exists():
        data = yaml.safe_load(config.read_text())
    else:   # installed package: the node's own defaults
        from ..node.parameters import DEFAULTS

        data = {"/**": {"ros__parameters": dict(DEFAULTS)}}
    params = data["/**"]["ros__parameters"]
    params.update(dict(num_threads=opts.num_threads, qos_reliability="reliable", qos_depth=10,
                       publish_map_points=True, point_stride=2, diagnostics_period_s=0.5))
    params.update(overrides)
    path = out / "node_params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_demo(opts: DemoOptions) -> dict:
    t_start = time.perf_counter()
    out = Path(opts.output)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    demo_input = load_input(opts)
    _say(opts, f"input: {demo_input.description}")
    t_model = time.perf_counter()
    overrides, meta, banners = prepare_model(opts, demo_input, out)
    model_prep_s = time.perf_counter() - t_model
    for banner in banners:
        _say(opts, "!" * 20 + " " + banner)
    robot = demo_input.robot
    if robot is not None:
        overrides.update(robot_parameters(robot))
        meta["robot"] = {**robot_parameters(robot), "camera_frame": robot.camera_frame,
                         "static_tf": [f"{parent} -> {child}" for parent, child, _ in robot.static_transforms]}
    params_file = write_params(out, overrides, opts)
    log = open(out / "node.log", "wb")
    node = subprocess.Popen(_node_command(params_file), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    pr = PlayerRecorder(NS)
    published, frames_by_stamp = 0, {}
    try:
        if not pr.spin_until(lambda: pr.node_ready() or node.poll() is not None, 180):
            raise RuntimeError("da3_node did not subscribe to the image topic within 180 s (see node.log)")
        if node.poll() is not None:
            raise RuntimeError(f"da3_node exited with {node.returncode} (see {out / 'node.log'})")

        def node_alive():
            if node.poll() is not None:
                raise RuntimeError(f"da3_node exited with {node.returncode} (see {out / 'node.log'})")

        # the node builds an output only for a matched subscriber: every recorded output first
        pr.wait_for_outputs(f"{NS}/da3_node", [t for t in output_topics(NS) if t != "/diagnostics"], timeout=120.0,
                            check=node_alive)
        t0_ns = time.time_ns()
        t0 = time.monotonic()
        frame_id = robot.camera_frame if robot is not None else "camera_optical_frame"
        if robot is not None:   # stamps: t0 + the robot's stamp time (3 image periods per frame at stride 3)
            t0_ns -= int(round(demo_input.frames[0].stamp_s * 1e9))
            pr.publish_static_tf(robot.static_transforms, t0_ns)
            pr.spin_for(0.2)
        for k, frame in enumerate(tqdm(demo_input.frames, desc="publishing", disable=opts.quiet)):
            due = t0 + k / opts.rate_hz
            pr.spin_for(max(0.0, due - time.monotonic()))
            if robot is not None:   # the odometry up to just past this stamp goes out before the image
                stamp_ns = t0_ns + int(round(frame.stamp_s * 1e9))
                pr.publish_odometry(frame.odometry, t0_ns, robot.odometry_frame, robot.base_frame)
            else:
                stamp_ns = t0_ns + int(k * 1e9 / opts.rate_hz)
            frames_by_stamp[stamp_ns] = frame
            pr.publish(frame.rgb, frame.K, stamp_ns, frame_id)
            published += 1
        done = pr.spin_until(lambda: int(pr.last_diagnostics.get("received", -1)) == published
                             and int(pr.last_diagnostics.get("pending", 1)) == 0, 180)
        if not done:
            _say(opts, "warning: the node did not account for every frame within 180 s")
        processed = int(pr.last_diagnostics.get("processed", 0))
        pr.spin_until(lambda: len(pr.recording.of(f"{NS}/depth")) >= processed, 60)
        pr.spin_for(1.0)
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGINT)
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        log.close()
        pr.close()
    meta.update(banners=banners, wall_time_s=time.perf_counter() - t_start, model_prep_s=model_prep_s,
                oracle=opts.oracle, rate_hz=opts.rate_hz, node_exit_code=node.returncode)
    report = build_report(out, pr.recording, ns=NS, frames_by_stamp=frames_by_stamp, demo_input=demo_input,
                          meta=meta, diagnostics=dict(pr.last_diagnostics), published=published)
    report["wall_time_s"] = time.perf_counter() - t_start
    return report
