"""``OracleBackend``: the synthetic world's window oracle behind the backend interface (backend kind
``"oracle"`` of the factory: demo ``--oracle`` mode and tests; never a default).

It replaces the network by ground truth with realistic noise (``da3_ros.synthetic.window_oracle``)
so that the whole pipeline around the model -- player, DDS, node, tracker, outputs, report -- can be
checked against ground truth. Frames are identified by their pixels: the node feeds the network
exactly the rendered images when the network size equals the camera size (identity mapping), so
every view of a window is looked up by a hash of its bytes.

The spec file (``model_file_path``) is JSON written by the demo's player, which renders the frames
anyway: ``{"oracle": {"path": "room_tour", "width": 320, "height": 240, "views": 4, "seed": 0,
"noise_seed": 0, "frames": {"<digest of the RGB bytes>": frame_index, ...}}}``. Like an exported model's
sidecar, the spec fixes the window: ``views``/``height``/``width`` left at None (the node's 0) take the
spec's values (a spec without ``views`` takes the requested N, else 4), ``ref_view`` None is ``first``;
explicit values must match.

Robot worlds (``test/robot_world_publisher.py``) add: ``"robot": {"fps": 10.0}`` (the camera of
``SyntheticRobot(fps=...)`` instead of the named ``path``), ``"garbage_frames": [k, ...]`` (a window whose
newest frame is one of them is predicted as garbage: confident, wrong depth and poses, which the tracker
must reject) and ``"pose_conditioned": true`` (the backend then requires a pose encoding, as a graph
exported with ``--pose-conditioned`` does, and the oracle follows the given poses).

Rig worlds (``test/rig_world_publisher.py``, issue 14) add ``"rig": {"preset": "stereo"|"ring", "baseline": 0.12,
"num_cameras": 3, "path": "room_tour", "path_scale": 1.0, "seed": 0}`` (``da3_ros.synthetic.rig.RigWorld``: what
rebuilds the identical rendered world; missing keys take its defaults, unknown ones are refused). ``frames`` then
maps every published image to its VIEW id ``index * C + camera`` (C cameras of the rig), and the oracle serves
windows over ``RigSequence.views()``: a window may mix cameras and rig poses, its "world" is the camera frame of
its reference view, and the relative pose of two cameras at one rig pose is the rig's extrinsics (plus the
oracle's pose noise) in the window's scale. Every camera of the rig needs the same intrinsics (both presets
do); ``path`` (top level) is then only a label.

``"mirrored_copy": [x, y, z]`` (a named path): the ``MirroredCopy`` with that offset is part of the world
(``loop_laps``' look-alike segment renders in it).

``"noise": {"translation_noise": 0.0005, ...}`` (any spec) overrides fields of ``OracleNoise``; an unknown
field name is a ValueError when the spec is written and when it is read. ``OracleBackend.last_window`` is the
ground truth of the latest prediction (``OracleWindow``: window ``scale`` per metre, ``T_world_ref``,
``frame_ids`` = frame or view ids) for tests.

Every prediction carries a ``descriptor`` (N, D): ``da3_ros.synthetic.image_descriptor.appearance_descriptor`` of
each view's pixels, the oracle's stand-in for the network's place-recognition descriptor (mirror-invariant on
purpose: a mirrored look-alike place must be proposed and then rejected by geometric verification).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.errors import EngineMismatchError
from da3_ros.backends.base import InferenceBackend
from da3_ros.backends.prediction import WindowPrediction
from da3_ros.geometry.camera import PinholeCamera
from da3_ros.synthetic.image_descriptor import appearance_descriptor
from da3_ros.synthetic.rig import RigWorld
from da3_ros.synthetic.room_scene import MirroredCopy
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import OracleNoise, WindowOracle


DEFAULT_VIEWS = 4
#: the oracle gives poses and confidence, depth in a random per-window scale (not metric), no sky
ORACLE_CAPABILITIES = ModelCapabilities(predicts_poses=True, metric_depth=False, predicts_sky=False,
                                        predicts_confidence=True)


def _digest(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def oracle_noise(overrides: Optional[Mapping[str, Any]] = None) -> OracleNoise:
    """``OracleNoise()`` with ``overrides`` ({field name: value}) applied; an unknown name is a ValueError."""
    if overrides is None:
        return OracleNoise()
    if not isinstance(overrides, Mapping):
        raise ValueError(f"oracle noise overrides must be a mapping, got {type(overrides).__name__}")
    defaults = OracleNoise()
    known = [f.name for f in fields(OracleNoise)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown oracle noise field(s) {unknown}; OracleNoise has: {', '.join(known)}")
    values = {}
    for name, value in overrides.items():
        default = getattr(defaults, name)
        try:
            values[name] = tuple(float(v) for v in value) if isinstance(default, tuple) else type(default)(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"oracle noise field {name!r}: bad value {value!r} ({exc})") from None
    return replace(defaults, **values)


def write_oracle_spec(path: Path, frames: dict[int, np.ndarray], *, camera_path: str = "room_tour",
                      width: int = 320, height: int = 240, views: Optional[int] = None, seed: int = 0,
                      noise_seed: int = 0, robot_fps: Optional[float] = None, garbage_frames=(),
                      pose_conditioned: bool = False, rig: Optional[dict] = None,
                      noise: Optional[dict] = None, mirrored_copy: Optional[tuple] = None) -> Path:
    """``frames``: {frame index (rig: view id): rendered RGB} of every image the player will publish;
    ``views``: the window N the spec fixes (None: any N the configuration asks for, 4 by default). Robot
    worlds: ``robot_fps`` (the camera of ``SyntheticRobot(fps=robot_fps)``; ``camera_path`` is then only a
    label), ``garbage_frames`` and ``pose_conditioned``; rig worlds: ``rig`` (``RigWorld`` fields); any spec:
    ``noise`` (``OracleNoise`` overrides); see the module docstring."""
    path = Path(path)
    if robot_fps is not None and rig is not None:
        raise ValueError("an oracle spec is a robot world or a rig world, not both")
    table = {_digest(rgb): int(i) for i, rgb in frames.items()}
    spec = {"path": camera_path, "width": width, "height": height, "views": views, "seed": seed,
            "noise_seed": noise_seed, "frames": table}
    if robot_fps is not None:
        spec["robot"] = {"fps": float(robot_fps)}
    if rig is not None:
        spec["rig"] = RigWorld.from_dict(rig).to_dict()   # validated, defaults filled in
    if noise:
        oracle_noise(noise)   # validate now rather than when the node starts
        spec["noise"] = dict(noise)
    if mirrored_copy is not None:
        spec["mirrored_copy"] = [float(v) for v in mirrored_copy]   # MirroredCopy offset (named paths)
    if garbage_frames:
        spec["garbage_frames"] = sorted(int(i) for i in garbage_frames)
    if pose_conditioned:
        spec["pose_conditioned"] = True
    path.write_text(json.dumps({"oracle": spec}))
    return path


class OracleBackend(InferenceBackend):
    name = "oracle"

    def __init__(self, spec_path: str, *, views: Optional[int] = None, height: Optional[int] = None,
                 width: Optional[int] = None, ref_view=None, variant: Optional[str] = None):
        spec_file = Path(spec_path)
        if not spec_file.is_file():
            raise FileNotFoundError(f"oracle spec {spec_path} does not exist")
        spec = json.loads(spec_file.read_text()).get("oracle")
        if spec is None:
            raise ValueError(f"{spec_path} is not an oracle spec (no 'oracle' key)")
        spec_views = spec.get("views") or views or DEFAULT_VIEWS   # a spec without views serves any N
        model = {"window_size": int(spec_views), "network_height": int(spec["height"]),
                 "network_width": int(spec["width"])}
        wanted = {"window_size": views, "network_height": height, "network_width": width}
        diffs = [f"{name}: oracle spec has {model[name]}, configuration wants {int(value)}"
                 for name, value in wanted.items() if value and int(value) != model[name]]
        if variant not in (None, "", "oracle"):
            diffs.append(f"variant: oracle spec is 'oracle', configuration wants {variant!r}")
        if diffs:
            raise EngineMismatchError(f"oracle spec {spec_path} does not match the configuration ({'; '.join(diffs)}); "
                                      "leave these parameters at 0 (= the spec's)")
        ref_view = "first" if ref_view in (None, "") else ref_view
        super().__init__(views=model["window_size"], height=model["network_height"], width=model["network_width"],
                         variant="oracle", ref_view=str(ref_view), capabilities=ORACLE_CAPABILITIES,
                         pose_conditioned=bool(spec.get("pose_conditioned", False)))
        height, width = self.height, self.width
        noise = oracle_noise(spec.get("noise"))
        robot, rig = spec.get("robot"), spec.get("rig")
        self.rig_sequence = None
        if robot is not None and rig is not None:
            raise ValueError(f"oracle spec {spec_path} has both 'robot' and 'rig'")
        if robot is not None:
            from da3_ros.synthetic.robot import SyntheticRobot

            robot_world = SyntheticRobot(fps=float(robot.get("fps", 10.0)))
            self.sequence = robot_world.sequence(width, height, seed=int(spec["seed"]))
        elif rig is not None:
            # the rig's views (index * C + camera) as one sequence; refuses cameras of different intrinsics
            self.rig_sequence = RigWorld.from_dict(rig).sequence(width, height)
            self.sequence = self.rig_sequence.views()
        else:
            copy = spec.get("mirrored_copy")
            self.sequence = SyntheticSequence(spec["path"], width=width, height=height, seed=int(spec["seed"]),
                                              mirrored_copy=None if copy is None else MirroredCopy(tuple(copy)))
        self._garbage = frozenset(int(i) for i in spec.get("garbage_frames", ()))
        self.oracle = WindowOracle(self.sequence, noise, seed=int(spec.get("noise_seed", 0)))
        self.last_window = None
        self._index = {str(k): int(v) for k, v in spec["frames"].items()}

    def frame_index(self, image: np.ndarray) -> int:
        idx = self._index.get(_digest(image))
        if idx is None:
            raise ValueError("oracle: image is not a frame of the synthetic sequence (oracle mode only works "
                             "on the demo's synthetic input at the camera resolution)")
        return idx

    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        ids = [self.frame_index(im) for im in images]
        window = self.oracle.predict(ids, ref_view=self.ref_view if self.ref_view != "saddle_balanced" else "first",
                                     garbage=True if ids[-1] in self._garbage else None, pose_encoding=pose_encoding)
        self.last_window = window
        # a backend returns intrinsics as the model does (DA3 pixel-corner convention); the oracle's are
        # pixel-centre ones (the synthetic renderer's), the pipeline converts them back
        h, w = window.depth.shape[1:]
        K_da3 = np.stack([PinholeCamera(w, h, k).to_da3_intrinsics() for k in window.intrinsics])
        descriptor = np.stack([appearance_descriptor(image) for image in images])
        return WindowPrediction(depth=window.depth, depth_conf=window.depth_conf, extrinsics=window.extrinsics,
                                intrinsics=K_da3.astype(np.float32), descriptor=descriptor, variant="oracle",
                                ref_view=self.ref_view)

    def describe(self):
        info = super().describe()
        info["weights"] = "ORACLE (ground truth + noise, not a network)"
        return info
