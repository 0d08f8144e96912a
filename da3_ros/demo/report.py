"""The demo's outputs: MCAP bag, depth colormaps, trajectory plot, fused point cloud (PLY) and
report.md / report.json. Every number is computed from what the recorder received."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..ros_io import image_to_numpy, pointcloud2_xyz_rgb, stamp_to_ns
from ..tracking.metrics import ate_fraction_of_path, ate_se3, ate_sim3, depth_metrics, path_length
from .player_recorder import Recording, type_name


def write_mcap(recording: Recording, path: Path) -> int:
    """All recorded messages (inputs and outputs) as a rosbag2 MCAP (openable in Foxglove)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    if path.exists():
        import shutil

        shutil.rmtree(path)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections = {}
    for rec in sorted(recording.messages, key=lambda m: m.receive_ns):
        if rec.topic not in connections:
            connections[rec.topic] = writer.add_connection(rec.topic, type_name(rec.msg_type), typestore=typestore)
        writer.write(connections[rec.topic], rec.receive_ns, rec.data)
    writer.close()
    return len(recording.messages)


def colorize(depth: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Depth (h, w) -> BGR turbo colormap (near = red/yellow... far = blue), NaN black."""
    finite = np.isfinite(depth) & (depth > 0)
    if not finite.any():
        return np.zeros((*depth.shape, 3), np.uint8)
    lo = np.percentile(depth[finite], 2) if lo is None else lo
    hi = np.percentile(depth[finite], 98) if hi is None else hi
    inv = np.zeros(depth.shape, np.float32)
    inv[finite] = 1.0 / np.clip(depth[finite], lo, hi)   # disparity-like: near is bright
    norm = (inv - 1.0 / hi) / max(1.0 / lo - 1.0 / hi, 1e-12)
    img = cv2.applyColorMap((np.clip(norm, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[~finite] = 0
    return img


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray | None) -> None:
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    cols = np.zeros((len(pts), 3), np.uint8) if colours is None else np.asarray(colours, np.uint8).reshape(-1, 3)
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rec = np.empty(len(pts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    rec["r"], rec["g"], rec["b"] = cols[:, 0], cols[:, 1], cols[:, 2]
    with open(path, "wb") as f:
        f.write(header.encode())
        f.write(rec.tobytes())


def plot_trajectory(path: Path, estimate: np.ndarray, truth: np.ndarray | None, title: str,
                    estimate_label: str = "estimate", unit: str = "") -> None:
    """Trajectory plot (PNG) in the plane of the two axes along which the trajectory spreads most; ``unit``
    of the plotted coordinates (shown with the span)."""
    size, margin = 640, 50
    canvas = np.full((size, size, 3), 255, np.uint8)
    series = [(estimate, (200, 60, 20), estimate_label)]
    if truth is not None:
        series.insert(0, (truth, (30, 160, 30), "ground truth"))
    stacked = np.concatenate([s[0] for s in series if len(s[0])]) if any(len(s[0]) for s in series) \
        else np.zeros((1, 3))
    axes = sorted(np.argsort(stacked.var(0))[-2:].tolist())
    allp = stacked[:, axes]
    lo, hi = allp.min(0), allp.max(0)
    span = max(float((hi - lo).max()), 1e-6)
    centre = (lo + hi) / 2

    def to_px(p):
        q = (p[:, axes] - centre) / span * (size - 2 * margin)
        return np.stack([size / 2 + q[:, 0], size / 2 - q[:, 1]], 1).astype(np.int32)

    for k, (pts, colour, name) in enumerate(series):
        if len(pts) >= 2:
            cv2.polylines(canvas, [to_px(pts)], False, colour, 2, cv2.LINE_AA)
        if len(pts):
            cv2.circle(canvas, tuple(int(v) for v in to_px(pts[:1])[0]), 5, colour, -1)
        cv2.putText(canvas, name, (margin, 24 + 20 * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 2, cv2.LINE_AA)
    cv2.putText(canvas, title, (margin, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    axes_text = f"axes {'xyz'[axes[0]]} (right) / {'xyz'[axes[1]]} (up), span {span:.2f}{' ' + unit if unit else ''}"
    cv2.putText(canvas, axes_text, (margin, size - 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), canvas)


def scale_state(diagnostics: dict) -> dict:
    """The node's metric scale from its last /diagnostics (``metric_scale_m_per_unit``: a number once known,
    "unknown" while a scale source has no estimate, absent without a scale source)."""
    value = diagnostics.get("metric_scale_m_per_unit")
    out = {"depth_unit": diagnostics.get("depth_unit")}
    if value is None:
        return {"state": "not configured", **out}
    try:
        m_per_unit = float(value)
    except ValueError:
        return {"state": "unknown", "summary": diagnostics.get("metric_scale"), **out}
    try:
        rel = float(diagnostics.get("metric_scale_relative_uncertainty"))
    except (TypeError, ValueError):
        rel = None
    return {"state": "known", "m_per_unit": m_per_unit, "relative_uncertainty": rel,
            "summary": diagnostics.get("metric_scale"), **out}


def _estimate(recording: Recording, ns: str, metric: bool):
    """(stamps_ns, positions (n, 3), source): with a known metric scale the node's last ``path`` (its whole
    trajectory re-expressed at the final scale, metres); otherwise its ``odometry`` messages (published also
    while the scale is unknown, odometry units), or ``pose`` messages when there are none."""
    if metric:
        paths = recording.of(f"{ns}/path")
        if paths:
            msg = paths[-1].message()
            if len(msg.poses) >= 2:
                return ([stamp_to_ns(p.header.stamp) for p in msg.poses],
                        [[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in msg.poses], "path")
    for topic in ("odometry", "pose"):
        msgs = [m.message() for m in recording.of(f"{ns}/{topic}")]
        if msgs:
            poses = [m.pose.pose if topic == "odometry" else m.pose for m in msgs]
            return ([stamp_to_ns(m.header.stamp) for m in msgs],
                    [[p.position.x, p.position.y, p.position.z] for p in poses], topic)
    return [], [], "none"


def _truth_position(frame, robot: bool):
    if frame is None:
        return None
    T = frame.T_odom_base if robot else frame.T_world_cam
    return None if T is None else np.asarray(T)[:3, 3]


def trajectory_report(recording: Recording, *, ns: str, frames_by_stamp: dict, demo_input, scale: dict,
                      plot_path: Path) -> dict:
    """The estimate against the ground truth (base_link for a robot input, the camera otherwise) and the plot.

    Metric scale known: the trajectory in metres, aligned by SE(3) only (no scale fit: a scale error counts);
    otherwise Sim(3) alignment of the trajectory in odometry units. The Sim(3) fields (``ate_rmse_m``,
    ``ate_percent_of_path``, ``sim3_scale_m_per_odom_unit``) are reported in both cases."""
    robot = demo_input.robot is not None
    metric = scale["state"] == "known"
    stamps, est, source = _estimate(recording, ns, metric)
    est = np.asarray(est, np.float64).reshape(-1, 3)
    unit = "m" if source == "path" else "odometry units"
    body = demo_input.robot.base_frame if robot else "camera"
    length = path_length(est) if len(est) > 1 else 0.0
    trajectory = {"poses": len(est), "source": source, "body_frame": body, "unit": unit,
                  "path_length_odom_units": length / scale["m_per_unit"] if unit == "m" else length,
                  "scale": scale}
    truth = [_truth_position(frames_by_stamp.get(st), robot) for st in stamps]
    all_truth = [_truth_position(f, robot) for _, f in sorted(frames_by_stamp.items())]
    all_truth = np.asarray([t for t in all_truth if t is not None]).reshape(-1, 3) if demo_input.has_ground_truth \
        else None
    moving = len(est) > 1 and length > 1e-9
    if len(est) > 1 and not moving:
        trajectory["note"] = "the estimated trajectory does not move (no ATE: a Sim(3) fit is undefined)"
    aligned = moving and demo_input.has_ground_truth and len(est) >= 3 and all(t is not None for t in truth)
    title = f"{body} trajectory"
    if aligned:
        truth_arr = np.asarray(truth)
        ate = ate_sim3(est, truth_arr)
        gt_len = path_length(truth_arr)
        trajectory.update({"ate_rmse_m": ate.rmse, "ate_max_m": ate.max_error, "gt_path_length_m": gt_len,
                           "ate_percent_of_path": 100.0 * ate.rmse / gt_len if gt_len > 0 else float("nan"),
                           "sim3_scale_m_per_odom_unit": ate.scale})
        if unit == "m":
            se3 = ate_se3(est, truth_arr)
            trajectory.update({"alignment": "SE(3) (metric scale known: no scale fit)",
                               "metric_ate_rmse_m": se3.rmse, "metric_ate_max_m": se3.max_error,
                               "metric_ate_percent_of_path": 100.0 * ate_fraction_of_path(est, truth_arr)
                               if gt_len > 0 else float("nan")})
            plot_est, label = se3.aligned, "estimate (m, SE(3)-aligned)"
            title += f" in metres, SE(3)-aligned: ATE {se3.rmse:.3f} m"
        else:
            trajectory["alignment"] = (f"Sim(3) (metric scale {scale['state']}: odometry units, scale fitted)")
            plot_est, label = ate.aligned, "estimate (Sim(3)-aligned)"
            title += f", scale {scale['state']}: Sim(3)-aligned, ATE {ate.rmse:.3f} m"
    else:
        trajectory["alignment"] = "none (too few moving poses with ground truth)"
        plot_est, label = est, f"estimate (not aligned, {unit})"
        title += f": {len(est)} poses, not aligned"
    plot_trajectory(plot_path, plot_est, all_truth if all_truth is not None and len(all_truth) else None, title,
                    estimate_label=label, unit="m" if aligned else "")
    return trajectory


def build_report(out: Path, recording: Recording, *, ns: str, frames_by_stamp: dict, demo_input, meta: dict,
                 diagnostics: dict, published: int, colormap_count: int = 8) -> dict:
    """Write every demo artefact into ``out`` and return the report dict (also report.json)."""
    out.mkdir(parents=True, exist_ok=True)
    depth_msgs = [m.message() for m in recording.of(f"{ns}/depth")]
    pose_msgs = [m.message() for m in recording.of(f"{ns}/pose")]
    counts = {}
    for m in recording.messages:
        counts[m.topic] = counts.get(m.topic, 0) + 1

    # --- depth quality and colormaps
    depth_rows = []
    frames_dir = out / "frames"
    frames_dir.mkdir(exist_ok=True)
    for old in frames_dir.glob("*.png"):
        old.unlink()
    chosen = set(np.linspace(0, len(depth_msgs) - 1, min(colormap_count, len(depth_msgs))).round().astype(int)) \
        if depth_msgs else set()
    for k, msg in enumerate(depth_msgs):
        frame = frames_by_stamp.get(stamp_to_ns(msg.header.stamp))
        pred = image_to_numpy(msg)
        row = {"stamp_ns": stamp_to_ns(msg.header.stamp), "frame": frame.index if frame is not None else None}
        if frame is not None and frame.depth is not None:
            try:
                row.update(depth_metrics(pred, frame.depth))
            except ValueError:
                pass
        depth_rows.append(row)
        if k in chosen and frame is not None:
            panels = [_label(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), f"input #{frame.index}"),
                      _label(colorize(pred), "DA3 depth")]
            if frame.depth is not None:
                gt = frame.depth
                fin = np.isfinite(pred) & (pred > 0)
                scaled = pred * (np.median(gt[fin]) / np.median(pred[fin])) if fin.any() else pred
                lo, hi = np.percentile(gt, 2), np.percentile(gt, 98)
                panels[1] = _label(colorize(scaled, lo, hi), "DA3 depth (median-scaled)")
                panels.append(_label(colorize(gt, lo, hi), "ground truth"))
            cv2.imwrite(str(frames_dir / f"depth_{k:04d}_frame{frame.index:04d}.png"), np.hstack(panels))
    abs_rel = [r["abs_rel"] for r in depth_rows if "abs_rel" in r]
    delta1 = [r["delta1"] for r in depth_rows if "delta1" in r]

    # --- trajectory
    scale = scale_state(diagnostics)
    trajectory = trajectory_report(recording, ns=ns, frames_by_stamp=frames_by_stamp, demo_input=demo_input,
                                   scale=scale, plot_path=out / "trajectory.png")

    # --- fused cloud
    maps = recording.of(f"{ns}/map_points")
    if maps:
        xyz, rgb = pointcloud2_xyz_rgb(maps[-1].message())
        xyz, rgb = xyz.reshape(-1, 3), (rgb.reshape(-1, 3) if rgb is not None else None)
    else:
        xyz, rgb = np.zeros((0, 3), np.float32), None
    finite = np.isfinite(xyz).all(1)
    write_ply(out / "fused_cloud.ply", xyz[finite], rgb[finite] if rgb is not None else None)

    # --- bag
    bag_messages = write_mcap(recording, out / "bag")

    received = int(diagnostics.get("received", 0))
    processed = int(diagnostics.get("processed", 0))
    dropped = int(diagnostics.get("dropped", 0))
    pending = int(diagnostics.get("pending", 0))
    stages = {}
    for key, value in diagnostics.items():
        for suffix in ("_p50_ms", "_p95_ms"):
            if key.endswith(suffix):
                stages.setdefault(key[: -len(suffix)], {})[suffix[1:4]] = float(value)
    report = {
        **meta,
        "input": demo_input.description,
        "accounting": {
            "published_by_player": published, "received_by_node": received, "processed": processed,
            "dropped": dropped, "pending": pending,
            "dropped_by_reason": {k[len("dropped_"):]: int(v) for k, v in diagnostics.items()
                                  if k.startswith("dropped_")},
            "adds_up": received == processed + dropped + pending and received == published,
            "depth_messages_recorded": len(depth_msgs), "pose_messages_recorded": len(pose_msgs),
            "messages_per_topic": counts,
        },
        "latency_ms": stages,
        "depth_quality": {"frames_evaluated": len(abs_rel),
                          "abs_rel_mean": float(np.mean(abs_rel)) if abs_rel else None,
                          "delta1_mean": float(np.mean(delta1)) if delta1 else None,
                          "protocol": "per-frame median scaling, all pixels with finite prediction and truth"},
        "metric_scale": scale,
        "trajectory": trajectory,
        "fused_cloud_points": int(finite.sum()),
        "bag": {"path": "bag", "format": "rosbag2 MCAP", "messages": bag_messages},
        "node_diagnostics": diagnostics,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "report.md").write_text(render_markdown(report))
    return report


def _fmt(v, nd=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _scale_line(scale: dict) -> str:
    state = scale.get("state", "not configured")
    if state == "known":
        return f"known, {_fmt(scale.get('m_per_unit'), 4)} m per odometry unit ({scale.get('summary')})"
    if state == "unknown":
        return (f"UNKNOWN at the end of the run ({scale.get('summary')}): no metric trajectory, the plot and ATE "
                "are in odometry units after a Sim(3) fit")
    return "not configured (camera only: odometry units)"


def render_markdown(r: dict) -> str:
    acc, dq, tr = r["accounting"], r["depth_quality"], r["trajectory"]
    lines = ["# da3_ros demo report", ""]
    for banner in r.get("banners", []):
        lines += [f"> **{banner}**", ""]
    lines += [
        f"- input: {r['input']}",
        f"- model: {r.get('model')}",
        f"- backend: {r.get('backend')}, window N={r.get('views')} at {r.get('network')}, ref view {r.get('ref_view')}",
        f"- wall time: {_fmt(r.get('wall_time_s'), 1)} s (model preparation {_fmt(r.get('model_prep_s'), 1)} s)",
        "", "## Frame accounting", "",
        "| published | received | processed | dropped | pending | adds up |", "|---|---|---|---|---|---|",
        f"| {acc['published_by_player']} | {acc['received_by_node']} | {acc['processed']} | {acc['dropped']} | "
        f"{acc['pending']} | {acc['adds_up']} |", "",
        f"Dropped by reason: {acc['dropped_by_reason']}", "",
        "## Latency per stage (node, last 200 frames)", "", "| stage | p50 ms | p95 ms |", "|---|---|---|",
    ]
    for stage, v in r["latency_ms"].items():
        lines.append(f"| {stage} | {_fmt(v.get('p50'), 2)} | {_fmt(v.get('p95'), 2)} |")
    lines += ["", "## Quality", "",
              f"- depth (frames with ground truth: {dq['frames_evaluated']}): AbsRel {_fmt(dq['abs_rel_mean'])}, "
              f"delta1 {_fmt(dq['delta1_mean'])} ({dq['protocol']})",
              f"- trajectory of {tr.get('body_frame')} ({tr.get('source')} messages): {tr['poses']} poses, path "
              f"{_fmt(tr['path_length_odom_units'])} odometry units" + (f" ({tr['note']})" if "note" in tr else ""),
              f"- metric scale: {_scale_line(tr.get('scale', {}))}",
              f"- alignment to the ground truth: {tr.get('alignment')}"]
    if "metric_ate_rmse_m" in tr:
        lines.append(f"- metric ATE (metres, SE(3) alignment only): {_fmt(tr['metric_ate_rmse_m'], 4)} m RMSE "
                     f"({_fmt(tr['metric_ate_percent_of_path'], 2)} % of the {_fmt(tr['gt_path_length_m'], 2)} m path)")
    if "ate_rmse_m" in tr:
        lines.append(f"- ATE after Sim(3) alignment: {_fmt(tr['ate_rmse_m'], 4)} m RMSE "
                     f"({_fmt(tr['ate_percent_of_path'], 2)} % of the {_fmt(tr['gt_path_length_m'], 2)} m path)")
    lines += ["", "## Files", "", "- `frames/*.png`: input | depth | ground truth (when known)",
              "- `trajectory.png`, `fused_cloud.ply`, `bag/` (MCAP, open in Foxglove), `report.json`", ""]
    return "\n".join(lines)
