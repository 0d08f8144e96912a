"""ROS-free parts of the node's rig (issue 14): per-camera accounting, the cameras rules, scale fusion, layout."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.node.rig_cameras import RigCameras, rig_problems
from da3_ros.pipeline.rig_accounting import RigFrameAccounting
from da3_ros.pipeline.window_processor import window_layout
from da3_ros.pipeline.rig_sync import RigSynchronizer
from da3_ros.tracking.metric_scale import KNOWN, ScaleEstimate, fuse_scale_estimates

MS = 1_000_000


def test_accounting_is_exact_with_a_half_rate_camera_and_group_drops():
    """left at 10 Hz, right at 5 Hz: every right frame is grouped, every other left frame has no partner; of the
    groups, some are processed, one is replaced in the mailbox (busy), one fails; then everything balances."""
    acc = RigFrameAccounting(["left", "right"])
    groups = []

    def on_group(group):
        acc.on_group()
        groups.append(group)

    sync = RigSynchronizer(2, slop_s=0.01, queue_size=10, callback=on_group)
    for k in range(20):
        sync.add(0, k * 100 * MS, ("left", k))
        if k % 2 == 0:
            sync.add(1, k * 100 * MS + 2 * MS, ("right", k))
    assert len(groups) == 10
    for i, _ in enumerate(groups):
        acc.on_outcome("busy" if i == 3 else "failed" if i == 7 else "processed")
    snap = acc.snapshot(sync.stats())
    assert snap["rig_frames_balanced"] is True
    assert (snap["left_received"], snap["right_received"]) == (20, 10)
    assert snap["left_processed"] == snap["right_processed"] == 8
    # left: 9 unmatched odd frames dropped as no_partner (the last odd one is still pending) + the 2 group drops
    assert snap["left_dropped_no_partner"] == 9 and snap["left_pending"] == 1
    assert snap["left_dropped"] == 11 and snap["right_dropped"] == 2 and snap["right_pending"] == 0
    assert snap["left_dropped_busy"] == snap["right_dropped_failed"] == 1
    sync.flush()
    snap = acc.snapshot(sync.stats())
    assert snap["left_pending"] == 0 and snap["left_dropped_flushed"] == 1 and snap["rig_frames_balanced"] is True


def test_accounting_in_flight_and_bad_outcome():
    acc = RigFrameAccounting(["a", "b"])
    sync = RigSynchronizer(2, slop_s=0.0, callback=lambda g: acc.on_group())
    sync.add(0, 5, None)
    sync.add(1, 5, None)
    snap = acc.snapshot(sync.stats())
    assert snap["rig_groups_in_flight"] == 1 and snap["rig_frames_balanced"] is True
    acc.on_outcome("processed")
    assert acc.snapshot(sync.stats())["rig_groups_in_flight"] == 0
    with pytest.raises(ValueError, match="outcome must be one of"):
        acc.on_outcome("lost")


@pytest.mark.parametrize("values,expected", [
    ({"cameras": [], "scale_source": "rig"}, "scale_source: rig needs a rig"),
    ({"cameras": ["left"], "base_frame": "base_link"}, "a rig needs at least 2 cameras"),
    ({"cameras": ["left", "left"], "base_frame": "base_link"}, "must be distinct"),
    ({"cameras": ["/left", "right"], "base_frame": "base_link"}, "relative name"),
    ({"cameras": ["left", "right"]}, "cameras need base_frame"),
    ({"cameras": ["left", "right"], "base_frame": "base_link", "camera_frame": "cam"}, "camera_frame must stay"),
])
def test_rig_configuration_rules(values, expected):
    problems = rig_problems(values)
    assert len(problems) == 1 and expected in problems[0], problems


def test_rig_camera_names_topics_and_frames():
    assert rig_problems({"cameras": ["front/left", "front_right"], "base_frame": "base_link"}) == []
    rig = RigCameras.from_settings({"cameras": ["front/left", "right"]})
    assert rig.active and len(rig) == 2
    assert rig.topic(0, "image") == "front/left/image" and rig.label(0) == "front_left"
    assert rig.frame(0, "") == "front_left_optical_frame" and rig.frame(1, "cam_r") == "cam_r"
    assert not RigCameras.from_settings({"cameras": []}).active


def test_window_layout():
    assert window_layout(4, 2) == 2 and window_layout(6, 3) == 2 and window_layout(6, 2) == 3
    for views, cams in ((4, 3), (2, 2), (3, 3)):
        with pytest.raises(ValueError, match=r"N = .* x \(k \+ 1\)"):
            window_layout(views, cams)
    # one camera is a rig of one: every view is a snapshot (the node still refuses `cameras` of length 1)
    assert window_layout(4, 1) == 4 and window_layout(1, 1) == 1
    with pytest.raises(ValueError, match="at least 1 camera"):
        window_layout(4, 0)


def test_scale_fusion_is_inverse_variance_in_log():
    rig = ScaleEstimate(state=KNOWN, scale=2.0, uncertainty=0.02, relative_uncertainty=0.01, n_pairs=10)
    odo = ScaleEstimate(state=KNOWN, scale=2.2, uncertainty=0.044, relative_uncertainty=0.02, n_pairs=30)
    fused = fuse_scale_estimates([rig, odo], ("rig", "odometry"))
    w = np.array([1 / 0.01 ** 2, 1 / 0.02 ** 2])
    assert fused.known
    assert fused.scale == pytest.approx(np.exp((w[0] * np.log(2.0) + w[1] * np.log(2.2)) / w.sum()), rel=1e-12)
    assert fused.relative_uncertainty == pytest.approx(1 / np.sqrt(w.sum()), rel=1e-12)
    assert fused.n_pairs == 40 and "rig 2" in fused.reason
    # one known source is used alone; none known: unknown with both reasons
    assert fuse_scale_estimates([rig, ScaleEstimate()], ("rig", "odometry")) is rig
    unknown = fuse_scale_estimates([None, ScaleEstimate(reason="no pairs yet")], ("rig", "odometry"))
    assert not unknown.known and unknown.reason == "rig: no estimate; odometry: no pairs yet"
