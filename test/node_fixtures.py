"""Helpers for tests that run da3_node as its own process."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def node_command(params_file: Path, namespace: str = "/da3") -> list[str]:
    exe = shutil.which("da3_node", path=str(Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("da3_node entry point not installed in this environment (run make env)")
    assert Path(params_file).exists(), f"no params file {params_file}"
    return [exe, "--ros-args", "--params-file", str(params_file), "-r", f"__ns:={namespace}"]


def write_params(tmp_path: Path, **overrides) -> Path:
    """config/da3.yaml with ``overrides`` applied, written to tmp_path/params.yaml."""
    data = yaml.safe_load((REPO / "config" / "da3.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    for key, value in overrides.items():
        if key not in params:
            raise KeyError(f"{key} is not a parameter of config/da3.yaml")
        params[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def real_or_synthetic_frames(shared_dir: Path, count: int):
    """(frames RGB uint8, K 3x3, source) from robot_unitree.mp4 when present, else the synthetic room."""
    video = shared_dir / "robot_unitree.mp4"
    if video.exists():
        cap = cv2.VideoCapture(str(video))
        frames = []
        while len(frames) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
        if len(frames) == count:
            h, w = frames[0].shape[:2]
            f = 0.8 * w   # nominal focal length (the clip has no calibration)
            K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
            return frames, K, "robot_unitree.mp4"
    from da3_ros.synthetic.sequence import SyntheticSequence

    seq = SyntheticSequence(width=320, height=240)
    return [seq.frame(i).rgb for i in range(count)], seq.K, "synthetic"


def node_status(diagnostics: list, node_name: str = "da3_node"):
    """(values {key: value}, DiagnosticStatus) of the newest /diagnostics status of ``node_name`` in ``diagnostics``
    (DiagnosticArray messages), or (None, None)."""
    for msg in reversed(diagnostics):
        for status in msg.status:
            if node_name in status.name:
                return {kv.key: kv.value for kv in status.values}, status
    return None, None
