"""VoxelMap: one point per voxel, newest keyframe wins, bounded size and memory."""
import numpy as np
import pytest

from da3_ros.pipeline.voxel_map import VoxelMap, voxel_downsample


def test_voxel_downsample_keeps_one_point_per_voxel():
    pts = np.array([[0.01, 0.01, 0.01], [0.02, 0.03, 0.04], [0.2, 0.0, 0.0]], np.float32)
    out, cols = voxel_downsample(pts, np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]], np.uint8), 0.1)
    np.testing.assert_array_equal(out, pts[[0, 2]])
    np.testing.assert_array_equal(cols[:, 0], [1, 3])


def test_nan_points_are_ignored_and_newest_keyframe_wins():
    m = VoxelMap(voxel_size=1.0, max_points=100)
    m.add_keyframe(0, np.array([[0.5, 0.5, 0.5], [np.nan, 0, 0]], np.float32), np.array([[10, 0, 0], [0, 0, 0]], np.uint8))
    m.add_keyframe(1, np.array([[0.6, 0.6, 0.6]], np.float32), np.array([[20, 0, 0]], np.uint8))
    pts, cols = m.points()
    assert pts.shape == (1, 3) and cols[0, 0] == 20


def test_size_and_memory_stay_bounded_when_revisiting():
    rng = np.random.default_rng(0)
    m = VoxelMap(voxel_size=0.1, max_points=500)
    for k in range(200):   # the same 1 m^3 room seen again and again
        m.add_keyframe(k, rng.random((400, 3)).astype(np.float32), None)
        pts, _ = m.points()
        assert len(pts) <= 500
    stored = sum(p.shape[0] for p, _ in m._keyframes.values())
    assert stored <= 2 * 500 + 400


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="voxel size must be > 0"):
        VoxelMap(voxel_size=0.0)
