"""Keyframe policy thresholds and window selection (newest frame last, front padding)."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle
from da3_ros.tracking.keyframes import KeyframePolicy, KeyframePolicyConfig, select_window

CFG = KeyframePolicyConfig(translation_ratio=0.1, rotation_deg=10.0, max_frame_gap=20, max_time_gap_s=2.0)


def _decide(t=(0, 0, 0), rot_deg=0.0, frames=1, seconds=0.1, median_depth=4.0):
    pose = make_transform(rotation_from_axis_angle([0, np.radians(rot_deg), 0]), t)
    return KeyframePolicy(CFG).decide(np.eye(4), median_depth, frames, seconds, pose)


def test_translation_threshold_is_relative_to_median_depth():
    below = _decide(t=(0.0, 0.0, 0.39))  # 0.39 / 4 = 0.0975
    above = _decide(t=(0.0, 0.0, 0.41))
    assert not below.is_keyframe and abs(below.translation_ratio - 0.0975) < 1e-12
    assert above.is_keyframe and above.reason == "translation"
    # same motion in a scene twice as deep: not a keyframe; in other units (x10): same decision
    assert not _decide(t=(0.0, 0.0, 0.41), median_depth=8.0).is_keyframe
    assert _decide(t=(0.0, 0.0, 4.1), median_depth=40.0).is_keyframe


def test_rotation_threshold():
    assert not _decide(rot_deg=9.9).is_keyframe
    d = _decide(rot_deg=10.1)
    assert d.is_keyframe and d.reason == "rotation" and abs(d.rotation_deg - 10.1) < 1e-9


def test_threshold_scale_lowers_both_thresholds():
    pose = make_transform(np.eye(3), (0.0, 0.0, 0.25))  # 0.0625 x median depth
    policy = KeyframePolicy(CFG)
    assert not policy.decide(np.eye(4), 4.0, 1, 0.1, pose).is_keyframe
    assert policy.decide(np.eye(4), 4.0, 1, 0.1, pose, threshold_scale=0.5).reason == "translation"
    rot = make_transform(rotation_from_axis_angle([0, np.radians(6.0), 0]), (0, 0, 0))
    assert policy.decide(np.eye(4), 4.0, 1, 0.1, rot, threshold_scale=0.5).reason == "rotation"
    with pytest.raises(ValueError, match="threshold_scale"):
        policy.decide(np.eye(4), 4.0, 1, 0.1, rot, threshold_scale=0.0)


def test_frame_and_time_gaps():
    assert not _decide(frames=19, seconds=1.9).is_keyframe
    assert _decide(frames=20).reason == "frame_gap"
    assert _decide(seconds=2.0).reason == "time_gap"
    off = KeyframePolicy(KeyframePolicyConfig(max_frame_gap=None, max_time_gap_s=None))
    assert not off.decide(np.eye(4), 4.0, 10_000, 1e6, np.eye(4)).is_keyframe


def test_config_and_input_validation():
    with pytest.raises(ValueError, match="translation_ratio"):
        KeyframePolicyConfig(translation_ratio=0.0)
    with pytest.raises(ValueError, match="max_frame_gap"):
        KeyframePolicyConfig(max_frame_gap=0)
    with pytest.raises(ValueError, match="last_kf_median_depth"):
        KeyframePolicy().decide(np.eye(4), 0.0, 1, 0.0, np.eye(4))


def test_select_window_pads_with_oldest_and_puts_new_frame_last():
    assert select_window([], 0, 4) == [0, 0, 0, 0]
    assert select_window([0], 5, 4) == [0, 0, 0, 5]
    assert select_window([0, 3], 5, 4) == [0, 0, 3, 5]
    assert select_window([0, 3, 4], 5, 4) == [0, 3, 4, 5]
    assert select_window([0, 3, 4, 7, 9], 11, 4) == [4, 7, 9, 11]
    assert select_window([1, 2], 3, 2) == [2, 3]
    with pytest.raises(ValueError, match="window_size"):
        select_window([], 0, 0)
