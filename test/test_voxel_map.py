"""VoxelMap: one point per voxel, newest keyframe wins, bounded size and memory, incremental."""
import numpy as np
import pytest

from da3_ros.pipeline.voxel_map import VoxelMap, first_per_voxel, voxel_downsample, voxel_keys


def test_voxel_downsample_keeps_one_point_per_voxel():
    pts = np.array([[0.01, 0.01, 0.01], [0.02, 0.03, 0.04], [0.2, 0.0, 0.0]], np.float32)
    out, cols = voxel_downsample(pts, np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]], np.uint8), 0.1)
    np.testing.assert_array_equal(out, pts[[0, 2]])
    np.testing.assert_array_equal(cols[:, 0], [1, 3])


def test_nan_points_are_ignored_and_newest_keyframe_wins():
    m = VoxelMap(voxel_size=1.0, max_points=100)
    m.add_keyframe(0, np.array([[0.5, 0.5, 0.5], [np.nan, 0, 0]], np.float32),
                   np.array([[10, 0, 0], [0, 0, 0]], np.uint8))
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
    assert m.stored_entries <= 2 * 500
    assert m.keyframe_count <= 500


def test_memory_stays_bounded_when_the_map_never_fills():
    """A camera staring at one small scene: no eviction ever, the log of overwritten voxels is compacted."""
    rng = np.random.default_rng(1)
    m = VoxelMap(voxel_size=0.1, max_points=10_000)
    for k in range(300):
        m.add_keyframe(k, rng.random((2000, 3)).astype(np.float32), None)   # <= 1000 voxels
    assert len(m) == 1000
    assert m.stored_entries <= 2 * 10_000 and m.keyframe_count <= 2 * 10_000 // 1000 + 1


def _reference_map(keyframes, voxel, max_points):
    """The original rebuild-everything algorithm (without its collapse step): voxel -> point."""
    kept = [voxel_downsample(p[np.isfinite(p).all(axis=1)], None, voxel)[0] for p in keyframes]
    while True:
        pts = voxel_downsample(np.concatenate(kept[::-1]), None, voxel)[0]   # newest first wins
        if pts.shape[0] <= max_points or len(kept) == 1:
            break
        kept.pop(0)
    pts = pts[:max_points]
    return dict(zip(voxel_keys(pts, voxel).tolist(), map(tuple, pts.tolist())))


@pytest.mark.parametrize("max_points", [150, 400, 10_000])
def test_matches_the_rebuild_from_all_keyframes(max_points):
    """Same voxels and the same point per voxel as fusing the kept keyframes from scratch."""
    rng = np.random.default_rng(max_points)
    m, keyframes = VoxelMap(voxel_size=0.25, max_points=max_points), []
    for k in range(40):
        centre = rng.normal(size=3) * 1.5   # wandering overlapping blobs: overwrites and evictions
        pts = (centre + rng.normal(size=(300, 3))).astype(np.float32)
        pts[rng.random(300) < 0.1] = np.nan
        keyframes.append(pts)
        m.add_keyframe(k, pts, None)
        got_pts, _ = m.points()
        got = dict(zip(voxel_keys(got_pts, 0.25).tolist(), map(tuple, got_pts.tolist())))
        assert got == _reference_map(keyframes, 0.25, max_points), f"keyframe {k}"


def test_a_keyframe_larger_than_the_map_keeps_its_first_voxels():
    m = VoxelMap(voxel_size=1.0, max_points=3)
    m.add_keyframe(0, np.array([[0.5, 0.5, 0.5], [9.5, 0, 0]], np.float32), None)
    line = np.stack([np.arange(10) + 0.5, np.zeros(10), np.zeros(10)], axis=1).astype(np.float32)[::-1].copy()
    m.add_keyframe(1, line, None)
    pts, _ = m.points()
    assert sorted(pts[:, 0].tolist()) == [7.5, 8.5, 9.5]   # the first three points of keyframe 1


def test_organized_grid_transform_and_colours():
    rng = np.random.default_rng(2)
    grid = rng.random((24, 32, 3)).astype(np.float32) * 2
    grid[3:5, 4:9] = np.nan
    cols = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    flat = VoxelMap(voxel_size=0.2)
    flat.add_keyframe(0, grid.reshape(-1, 3), cols.reshape(-1, 3))
    organized = VoxelMap(voxel_size=0.2)
    T = np.eye(4)
    T[:3, 3] = [10.0, -3.0, 0.5]
    organized.add_keyframe(0, grid - T[:3, 3].astype(np.float32), cols, T_odom_points=T)
    (p1, c1), (p2, c2) = flat.points(), organized.points()
    o1, o2 = np.lexsort(p1.T), np.lexsort(p2.T)
    # float32 (p - t) + t differs from p by an ulp; voxels still agree for these points
    np.testing.assert_allclose(p2[o2], p1[o1], atol=1e-5)
    np.testing.assert_array_equal(c2[o2], c1[o1])
    np.testing.assert_array_equal(np.sort(voxel_keys(p1, 0.2)), np.sort(voxel_keys(grid.reshape(-1, 3), 0.2)[
        first_per_voxel(voxel_keys(grid.reshape(-1, 3), 0.2))[1]]))


def test_points_are_read_only_views_and_clear_empties_the_map():
    m = VoxelMap(voxel_size=0.5, max_points=100)
    m.add_keyframe(0, np.array([[0.1, 0.1, 0.1], [2.0, 0, 0]], np.float32), np.zeros((2, 3), np.uint8))
    pts, cols = m.points()
    assert not pts.flags.writeable and np.shares_memory(pts, m.points()[0])
    m.add_keyframe(1, np.array([[5.0, 0, 0]], np.float32), None)
    assert m.points()[1] is None and len(m) == 3   # a kept keyframe without colours: no colours
    m.add_keyframe(2, np.full((5, 3), np.nan, np.float32), None)   # nothing valid: not kept
    assert m.keyframe_count == 2
    m.clear()
    assert len(m) == 0 and m.points()[0].shape == (0, 3) and m.stored_entries == 0


def test_far_and_non_finite_points_are_dropped():
    keys = voxel_keys(np.array([[1e9, 0, 0], [np.inf, 0, 0], [0, np.nan, 0], [-3.2, 4.1, 0.05]], np.float32), 0.05)
    assert keys[:3].tolist() == [-1, -1, -1] and keys[3] >= 0


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="voxel size must be > 0"):
        VoxelMap(voxel_size=0.0)
    with pytest.raises(ValueError, match="colours must have"):
        VoxelMap().add_keyframe(0, np.zeros((4, 3), np.float32), np.zeros((3, 3), np.uint8))
