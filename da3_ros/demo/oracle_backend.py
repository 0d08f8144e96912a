"""``OracleBackend``: the synthetic world's window oracle behind the backend interface (demo
``--oracle`` mode and tests; never a default).

It replaces the network by ground truth with realistic noise (``da3_ros.synthetic.window_oracle``)
so that the whole pipeline around the model -- player, DDS, node, tracker, outputs, report -- can be
checked against ground truth. Frames are identified by their pixels: the node feeds the network
exactly the rendered images when the network size equals the camera size (identity mapping), so
every view of a window is looked up by a hash of its bytes.

The spec file (``model_file_path``) is JSON written by the demo's player, which renders the frames
anyway: ``{"oracle": {"path": "room_tour", "width": 320, "height": 240, "seed": 0, "noise_seed": 0,
"frames": {"<digest of the RGB bytes>": frame_index, ...}}}``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..backends.base import EngineMismatchError, InferenceBackend
from ..backends.prediction import WindowPrediction
from ..geometry.camera import PinholeCamera
from ..synthetic.sequence import SyntheticSequence
from ..synthetic.window_oracle import OracleNoise, WindowOracle


def _digest(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def write_oracle_spec(path: Path, frames: dict[int, np.ndarray], *, camera_path: str = "room_tour",
                      width: int = 320, height: int = 240, seed: int = 0, noise_seed: int = 0) -> Path:
    """``frames``: {frame index: rendered RGB} of every frame the player will publish."""
    path = Path(path)
    table = {_digest(rgb): int(i) for i, rgb in frames.items()}
    path.write_text(json.dumps({"oracle": {"path": camera_path, "width": width, "height": height,
                                           "seed": seed, "noise_seed": noise_seed, "frames": table}}))
    return path


class OracleBackend(InferenceBackend):
    name = "oracle"

    def __init__(self, spec_path: str, *, views: int, height: int, width: int, ref_view="first"):
        spec_file = Path(spec_path)
        if not spec_file.is_file():
            raise FileNotFoundError(f"oracle spec {spec_path} does not exist")
        spec = json.loads(spec_file.read_text()).get("oracle")
        if spec is None:
            raise ValueError(f"{spec_path} is not an oracle spec (no 'oracle' key)")
        if (int(spec["height"]), int(spec["width"])) != (height, width):
            raise EngineMismatchError(
                f"oracle renders {spec['width']}x{spec['height']} but the node's network size is {width}x{height}; "
                f"set network_width: {spec['width']} and network_height: {spec['height']}")
        super().__init__(views=views, height=height, width=width, variant="oracle", ref_view=str(ref_view))
        self.sequence = SyntheticSequence(spec["path"], width=width, height=height, seed=int(spec["seed"]))
        self.oracle = WindowOracle(self.sequence, OracleNoise(), seed=int(spec.get("noise_seed", 0)))
        self._index = {str(k): int(v) for k, v in spec["frames"].items()}

    def frame_index(self, image: np.ndarray) -> int:
        idx = self._index.get(_digest(image))
        if idx is None:
            raise ValueError("oracle: image is not a frame of the synthetic sequence (oracle mode only works "
                             "on the demo's synthetic input at the camera resolution)")
        return idx

    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        ids = [self.frame_index(im) for im in images]
        window = self.oracle.predict(ids, ref_view=self.ref_view if self.ref_view != "saddle_balanced" else "first")
        # a backend returns intrinsics as the model does (DA3 pixel-corner convention); the oracle's are
        # pixel-centre ones (the synthetic renderer's), the pipeline converts them back
        h, w = window.depth.shape[1:]
        K_da3 = np.stack([PinholeCamera(w, h, k).to_da3_intrinsics() for k in window.intrinsics])
        return WindowPrediction(depth=window.depth, depth_conf=window.depth_conf, extrinsics=window.extrinsics,
                                intrinsics=K_da3.astype(np.float32), variant="oracle",
                                ref_view=self.ref_view)

    def describe(self):
        info = super().describe()
        info["weights"] = "ORACLE (ground truth + noise, not a network)"
        return info
