"""``LoopClosure``: the window processor's side of loop closure (ROS-free): whether it is active and why not,
the saved map it loads at construction, the hand-over of each keyframe to ``da3_ros.loop.LoopCloser`` and the
map it saves (notes/loop.md).

Active when ``ProcessorConfig.loop_closure`` is on, the processor tracks (a multi-view model with poses), the
model is not pose-conditioned (verification runs a window of stored keyframes without TF poses) and its
predictions carry a ``descriptor`` (known at the first tracked window; until then the state is "waiting for the
first window"). The closer is built at the first keyframe of an active processor; ``map_correction`` is None
while inactive. Everything here runs on the inference worker except ``map_correction`` / ``stats`` / ``save``
(thread-safe: the node's timers and service threads call them).
"""
from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from ..loop.keyframe_database import KeyframeDatabase
from ..loop.loop_closer import LoopCloser
from ..loop.map_store import MapFormatError, load_map, save_map

__all__ = ["LoopClosure", "NO_DESCRIPTOR"]

NO_DESCRIPTOR = "model has no descriptor output: export with --with-descriptor"


def _load(directory: str):
    path = Path(directory).expanduser()
    try:
        saved = load_map(path)
    except MapFormatError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise MapFormatError(f"map_load_directory {path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    if not saved.keyframes:
        raise MapFormatError(f"map_load_directory {path}: the map has no verification keyframes "
                             "(verification.npz), so nothing can be relocalised against it")
    return saved, str(path.resolve())


class LoopClosure:
    """See the module docstring."""

    def __init__(self, config, backend, num_cameras: int):
        self.config = config
        self.backend = backend
        self.map = None     # the processor's MapFusionWorker (or None), set by the processor
        tracking = backend.views >= 2 and backend.capabilities.predicts_poses
        if not config.loop_closure:
            self.state = "off"
        elif not tracking:
            self.state = "no tracking (a window of one view or a model without poses)"
        elif getattr(backend, "pose_conditioned", False):
            self.state = "pose-conditioned model: loop verification needs an unconditioned window"
        else:
            self.state = "waiting for the first window"
        self.possible = self.state == "waiting for the first window"
        self.loaded, self.loaded_path = (None, "")
        if config.map_load_directory:
            self.loaded, self.loaded_path = _load(config.map_load_directory)
        self.metric = bool(backend.capabilities.metric_depth)
        self.closer: Optional[LoopCloser] = None
        self._lock = threading.Lock()    # the worker's keyframe step vs save_map

    # -- thread-safe ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state == "on"

    def map_correction(self) -> Optional[np.ndarray]:
        closer = self.closer
        if not self.active or closer is None:
            return np.eye(4) if self.active else None
        return closer.correction()

    def stats(self) -> dict:
        closer = self.closer
        out = {"loop_closure": self.state, "loop_candidates": 0, "loop_accepted": 0, "loop_rejected": {},
               "last_optimisation_ms": 0.0, "last_optimisation_keyframes": 0, "map_keyframes": 0,
               "relocalised": False, "loaded_map": self.loaded_path}
        if closer is not None:
            out.update(closer.stats())
        return out

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Test-facing (the node never calls it): wait until the pose-graph optimiser has applied every result
        (``LoopCloser.wait_idle``); True at once while no closer exists."""
        closer = self.closer
        return True if closer is None else closer.wait_idle(timeout)

    def save(self, directory: str, metres_per_unit: Optional[float]) -> str:
        """A new folder ``map_<UTC time>[_n]`` under ``directory`` (module docstring of loop.map_store)."""
        if not self.active:
            raise RuntimeError(f"save_map: loop closure is not active ({self.state}); nothing to save")
        with self._lock:
            closer = self.closer
            if closer is None or not closer.map_poses():
                raise RuntimeError("save_map: the map has no keyframe yet; nothing to save")
            keyframes = closer.keyframes_in_map()
            poses = closer.map_poses()
            graph = closer.graph.copy()
            ids, stamps, descriptors, _ = closer.database.arrays()
        s = float(metres_per_unit) if metres_per_unit else 1.0
        unit = "m" if metres_per_unit else "model"
        database = KeyframeDatabase(initial_capacity=max(len(ids), 1))
        for key, stamp, d in zip(ids, stamps, descriptors):   # every keyframe (the store may be thinned)
            T = poses[key].copy()
            T[:3, 3] *= s
            database.add(key, stamp, d, T)
        scaled = []
        for kf in keyframes:
            T = kf.T_map_cam.copy()
            T[:3, 3] *= s
            scaled.append(type(kf)(kf.keyframe_id, kf.stamp, kf.image, T, kf.points_map * s, kf.depth * s, kf.conf,
                                   kf.median_depth * s))
        points, colours = self._cloud(keyframes)
        folder = self._new_folder(directory)
        save_map(folder, database, graph, points * np.float32(s), colours, unit=unit, keyframes=scaled)
        return str(folder.resolve())

    def _cloud(self, keyframes):
        if self.map is not None:
            return self.map.call(lambda voxel_map: tuple(None if a is None else np.array(a)
                                                         for a in voxel_map.points()))
        return np.concatenate([kf.points_map for kf in keyframes]).astype(np.float32), None

    @staticmethod
    def _new_folder(directory: str) -> Path:
        root = Path(directory).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        stem = "map_" + _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder, n = root / stem, 1
        while folder.exists() or (root / f".{folder.name}.partial").exists():
            n += 1
            folder = root / f"{stem}_{n}"
        return folder

    # -- the inference worker ------------------------------------------------------------------
    def on_keyframe(self, snapshot_id: int, stamp_ns: int, image: np.ndarray, result, prediction,
                    T_odometry_cam: Optional[np.ndarray], metres_per_unit: Optional[float], num_cameras: int) -> bool:
        """One accepted keyframe (the tracker's ``FrameResult``, the window's prediction); True when it
        relocalised the robot in the loaded map."""
        if self.state == "waiting for the first window":
            self.state = "on" if prediction.descriptor is not None else NO_DESCRIPTOR
        if not self.active:
            return False
        with self._lock:
            if self.closer is None:
                self.closer = self._closer()
            last = prediction.descriptor.shape[0] - num_cameras     # the reference camera's newest view
            conf = result.confidence if result.confidence is not None else np.ones_like(result.depth)
            event = self.closer.add_keyframe(snapshot_id, stamp_ns * 1e-9, image, result.T_odom_cam, result.depth,
                                             conf, result.intrinsics, prediction.descriptor[last], T_odometry_cam,
                                             metres_per_unit)
        return event is not None and event.kind == "relocalised"

    def _closer(self) -> LoopCloser:
        def predict(images):
            return self.backend.infer(images)

        def corrected(corrections):
            if self.map is not None:
                self.map.rebuild(corrections)

        loaded = self.loaded
        return LoopCloser(self.backend.views, self.metric, predict, on_correction=corrected, loaded=loaded,
                          loaded_keyframes=None if loaded is None else loaded.keyframes, loaded_path=self.loaded_path)

    def reset(self, reason: str) -> None:
        """A new trajectory: a new odometry frame, so a new graph (the loaded map stays)."""
        with self._lock:
            if self.closer is not None:
                self.closer.close()
                self.closer = None

    def close(self) -> None:
        with self._lock:
            if self.closer is not None:
                self.closer.close()
