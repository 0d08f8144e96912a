"""A short end-to-end demo run (node process + player/recorder over DDS): files and accounting."""
import json

import numpy as np
import pytest

from da3_ros.demo.runner import DemoOptions, run_demo

pytestmark = pytest.mark.ros  # DDS test: runs da3_node and the demo player/recorder over DDS


def _read_ply_vertex_count(path):
    header = path.read_bytes()[:400].split(b"end_header")[0].decode()
    return int(next(line.split()[-1] for line in header.splitlines() if line.startswith("element vertex")))


def _bag_topics(bag_dir):
    from rosbags.rosbag2 import Reader

    with Reader(bag_dir) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def _check_common_files(out, report):
    assert (out / "report.md").exists() and (out / "trajectory.png").stat().st_size > 1000
    assert json.loads((out / "report.json").read_text())["accounting"] == report["accounting"]
    assert len(list((out / "frames").glob("*.png"))) >= 1
    assert _read_ply_vertex_count(out / "fused_cloud.ply") == report["fused_cloud_points"] > 0
    topics = _bag_topics(out / "bag")
    acc = report["accounting"]
    assert topics["/da3/image"] == acc["published_by_player"]
    # every depth the recorder got is in the bag; on a starved CPU a few outputs may still be in
    # flight (RELIABLE KEEP_LAST between processes) when the recording ends
    assert topics["/da3/depth"] == acc["depth_messages_recorded"]
    assert acc["processed"] >= acc["depth_messages_recorded"] >= 0.75 * acc["processed"]
    assert abs(topics["/da3/points"] - topics["/da3/depth"]) <= 0.25 * acc["processed"]
    assert acc["received_by_node"] == acc["processed"] + acc["dropped"] + acc["pending"]
    assert acc["adds_up"] is True and acc["pending"] == 0
    assert sum(acc["dropped_by_reason"].values()) == acc["dropped"]
    for stage in ("decode", "preprocess", "inference", "alignment", "postprocess", "cloud", "publish"):
        assert report["latency_ms"][stage]["p50"] >= 0


def test_oracle_demo_meets_the_tracker_thresholds(tmp_path):
    out = tmp_path / "oracle"
    report = run_demo(DemoOptions(output=out, oracle=True, frames=40, rate_hz=8.0, quiet=True))
    _check_common_files(out, report)
    assert "ORACLE MODE" in (out / "report.md").read_text()
    tr, dq = report["trajectory"], report["depth_quality"]
    assert tr["poses"] >= 10
    assert tr["ate_percent_of_path"] <= 2.0, tr
    assert dq["frames_evaluated"] == report["accounting"]["processed"]
    assert dq["abs_rel_mean"] < 0.08 and dq["delta1_mean"] > 0.95, dq


def test_demo_with_an_exported_model(tmp_path, reduced_onnx):
    out = tmp_path / "model"
    report = run_demo(DemoOptions(output=out, model=str(reduced_onnx), frames=12, rate_hz=5.0, quiet=True))
    _check_common_files(out, report)
    assert report["backend"] == "onnxruntime" and report["views"] == 3 and report["network"] == "112x154"
    assert report["banners"] == [] and "ORACLE" not in (out / "report.md").read_text()
    assert report["depth_quality"]["frames_evaluated"] >= 1
    assert np.isfinite(report["depth_quality"]["abs_rel_mean"])


def test_oracle_refuses_real_footage(tmp_path):
    with pytest.raises(ValueError, match="--oracle works only on the synthetic input"):
        run_demo(DemoOptions(output=tmp_path, oracle=True, video="/nonexistent.mp4", quiet=True))
