"""The saved map's format: ``save_map(folder, ...)`` / ``load_map(folder)`` (ROS-free; ``~/save_map`` and
``map_load_directory`` use it).

A map folder holds:

- ``map.json``: ``{"format": "da3_ros_map", "version": 1, "frame": map frame, "unit": "m" | "model",
  "keyframes": K, "created_utc": ..., "files": {...}}``;
- ``keyframes.npz``: ``ids`` (JSON text of the list of keyframe ids: ints or strings), ``stamps`` (K,) float64
  seconds, ``descriptors`` (K, D) float32 (L2-normalised), ``poses`` (K, 4, 4) float64 ``T_map_cam``;
- ``pose_graph.json``: ``PoseGraph.records()`` (nodes with their initial poses, every edge with its kind, sigmas
  and robust kernel);
- ``verification.npz`` (optional: what relocalisation verifies against): ``ids`` (JSON text: the keyframes of the
  bounded verification store, in database order; absent: every keyframe) and per such keyframe its network ``images``
  (K, h, w, 3) uint8, the grid-sampled ``points`` (K, M, 3) (map frame), ``depth`` / ``conf`` (K, M) and
  ``median_depth`` (K,), in the order of ``keyframes.npz``;
- ``cloud.ply``: the fused cloud in the map frame, binary little-endian PLY, ``x y z`` float32 (+ ``red green
  blue`` uint8 when coloured).

The folder is written under a temporary name and renamed at the end, so a folder that exists is complete.
``load_map`` checks the format, the version and the shapes, and raises ``MapFormatError`` naming what is wrong.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .keyframe_database import KeyframeDatabase
from .loop_verification import LoopKeyframe
from .pose_graph import PoseGraph

__all__ = ["MAP_FORMAT", "MAP_VERSION", "MapFormatError", "SavedMap", "load_map", "read_ply", "save_map",
           "write_ply"]

MAP_FORMAT = "da3_ros_map"
MAP_VERSION = 1


class MapFormatError(ValueError):
    """A map folder that cannot be loaded (what is wrong is in the message)."""


@dataclass
class SavedMap:
    """What a map folder holds (see the module docstring)."""

    database: KeyframeDatabase
    graph: Optional[PoseGraph]
    points: np.ndarray                 # (P, 3) float32, map frame
    colours: Optional[np.ndarray]      # (P, 3) uint8 or None
    frame: str
    unit: str
    keyframes: Optional[list] = None   # LoopKeyframe per keyframe (verification.npz), map frame


def write_ply(path: os.PathLike, points: np.ndarray, colours: Optional[np.ndarray] = None) -> None:
    """Binary little-endian PLY of ``points`` (P, 3) (+ ``colours`` (P, 3) uint8)."""
    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colours is not None:
        col = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
        if len(col) != len(pts):
            raise ValueError(f"colours must be ({len(pts)}, 3), got {col.shape}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rows = np.empty(len(pts), dtype=fields)
    rows["x"], rows["y"], rows["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if colours is not None:
        rows["red"], rows["green"], rows["blue"] = col[:, 0], col[:, 1], col[:, 2]
    kinds = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(pts)}"]
    header += [f"property {kinds[t]} {name}" for name, t in fields] + ["end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(rows.tobytes())


def read_ply(path: os.PathLike):
    """``(points (P, 3) float32, colours (P, 3) uint8 or None)`` of a PLY written by :func:`write_ply`."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise MapFormatError(f"{path}: not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise MapFormatError(f"{path}: only binary little-endian PLY is read")
    count = next((int(line.split()[2]) for line in header if line.startswith("element vertex")), None)
    names = [line.split()[2] for line in header if line.startswith("property")]
    types = {"float": "<f4", "uchar": "u1"}
    fields = [(line.split()[2], types[line.split()[1]]) for line in header if line.startswith("property")]
    if count is None or names[:3] != ["x", "y", "z"]:
        raise MapFormatError(f"{path}: PLY without x y z vertices")
    rows = np.frombuffer(data, dtype=fields, count=count, offset=end + len(b"end_header\n"))
    points = np.stack([rows["x"], rows["y"], rows["z"]], axis=1).astype(np.float32)
    colours = np.stack([rows["red"], rows["green"], rows["blue"]], axis=1) if "red" in names else None
    return points, colours


def _check_ids(ids) -> list:
    out = []
    for k in ids:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer, str)):
            raise ValueError(f"keyframe ids must be ints or strings to be saved, got {k!r}")
        out.append(int(k) if isinstance(k, (int, np.integer)) else str(k))
    return out


def save_map(folder: os.PathLike, database: KeyframeDatabase, graph: Optional[PoseGraph], points: np.ndarray,
             colours: Optional[np.ndarray] = None, *, frame: str = "map", unit: str = "m",
             keyframes: Optional[list] = None) -> Path:
    """Write a map folder (module docstring); ``folder`` must not exist yet. Returns its path. ``keyframes``:
    the ``LoopKeyframe`` of every database keyframe, in its order (``verification.npz``)."""
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"map folder {folder} already exists (a map is saved into a new folder)")
    if unit not in ("m", "model"):
        raise ValueError(f"unit must be 'm' or 'model', got {unit!r}")
    ids, stamps, descriptors, poses = database.arrays()
    ids = _check_ids(ids)
    tmp = folder.with_name(f".{folder.name}.partial")
    tmp.mkdir(parents=True)
    np.savez(tmp / "keyframes.npz", ids=np.array(json.dumps(ids)), stamps=stamps,
             descriptors=descriptors.astype(np.float32), poses=poses)
    files = {"keyframes": "keyframes.npz", "cloud": "cloud.ply"}
    if graph is not None:
        (tmp / "pose_graph.json").write_text(json.dumps(graph.records()))
        files["pose_graph"] = "pose_graph.json"
    if keyframes:
        stored = _check_ids([kf.keyframe_id for kf in keyframes])
        position = {k: i for i, k in enumerate(ids)}
        if any(k not in position for k in stored) or [position[k] for k in stored] != sorted(position[k]
                                                                                             for k in stored):
            raise ValueError("keyframes must be database keyframes, in its order")
        np.savez(tmp / "verification.npz", ids=np.array(json.dumps(stored)),
                 images=np.stack([kf.image for kf in keyframes]).astype(np.uint8),
                 points=np.stack([kf.points_map for kf in keyframes]), depth=np.stack([kf.depth for kf in keyframes]),
                 conf=np.stack([kf.conf for kf in keyframes]),
                 median_depth=np.array([kf.median_depth for kf in keyframes], np.float64))
        files["verification"] = "verification.npz"
    write_ply(tmp / "cloud.ply", points, colours)
    manifest = {"format": MAP_FORMAT, "version": MAP_VERSION, "frame": str(frame), "unit": unit,
                "keyframes": len(ids), "descriptor_dim": int(descriptors.shape[1]) if len(ids) else 0,
                "cloud_points": int(np.asarray(points).reshape(-1, 3).shape[0]),
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "files": files}
    (tmp / "map.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder)
    return folder


def load_map(folder: os.PathLike) -> SavedMap:
    """Read a map folder written by :func:`save_map`; ``MapFormatError`` names what is wrong."""
    folder = Path(folder)
    manifest_path = folder / "map.json"
    if not manifest_path.is_file():
        raise MapFormatError(f"{folder} is not a saved map (no map.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise MapFormatError(f"{manifest_path} is not valid JSON ({exc})") from exc
    if manifest.get("format") != MAP_FORMAT or manifest.get("version") != MAP_VERSION:
        raise MapFormatError(f"{folder}: format {manifest.get('format')!r} version {manifest.get('version')!r}, "
                             f"this build reads {MAP_FORMAT!r} version {MAP_VERSION}")
    files = manifest.get("files", {})
    with np.load(folder / files.get("keyframes", "keyframes.npz")) as npz:
        ids = json.loads(str(npz["ids"]))
        stamps, descriptors, poses = npz["stamps"], npz["descriptors"], npz["poses"]
    k = len(ids)
    if stamps.shape != (k,) or poses.shape != (k, 4, 4) or (k and descriptors.shape[0] != k):
        raise MapFormatError(f"{folder}: keyframe arrays disagree (ids {k}, stamps {stamps.shape}, "
                             f"descriptors {descriptors.shape}, poses {poses.shape})")
    database = KeyframeDatabase(initial_capacity=max(k, 1))
    for i, key in enumerate(ids):
        database.add(key, float(stamps[i]), descriptors[i], poses[i])
    graph = None
    if "pose_graph" in files:
        graph = PoseGraph.from_records(json.loads((folder / files["pose_graph"]).read_text()))
    points, colours = read_ply(folder / files.get("cloud", "cloud.ply"))
    keyframes = _read_verification(folder, files["verification"], ids, stamps, poses) \
        if "verification" in files else None
    return SavedMap(database, graph, points, colours, str(manifest.get("frame", "map")), str(manifest["unit"]),
                    keyframes)


def _read_verification(folder: Path, name: str, ids: list, stamps: np.ndarray, poses: np.ndarray) -> list:
    with np.load(folder / name) as npz:
        arrays = {key: npz[key] for key in ("images", "points", "depth", "conf", "median_depth")}
        stored = json.loads(str(npz["ids"])) if "ids" in npz.files else list(ids)   # older maps: every keyframe
    position = {k: i for i, k in enumerate(ids)}
    k = len(stored)
    if any(a.shape[0] != k for a in arrays.values()) or arrays["images"].ndim != 4 or \
            any(key not in position for key in stored):
        raise MapFormatError(f"{folder}: {name} does not hold one entry per stored keyframe ({k})")
    return [LoopKeyframe(key, float(stamps[position[key]]), arrays["images"][j], poses[position[key]],
                         arrays["points"][j], arrays["depth"][j], arrays["conf"][j], float(arrays["median_depth"][j]))
            for j, key in enumerate(stored)]
