"""MapFusionWorker: the fused map built on its own thread equals the synchronous VoxelMap, in order,
with no keyframe lost (also under back-pressure), and clear() keeps its place in the order."""
import threading
import time

import numpy as np

from da3_ros.pipeline.map_fusion import MapFusionWorker
from da3_ros.pipeline.voxel_map import VoxelMap


def _keyframes(n, seed=0, h=24, w=32):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pts = rng.uniform(-2, 2, (h, w, 3)).astype(np.float32)
        pts[rng.random((h, w)) < 0.1] = np.nan
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        T = np.eye(4)
        T[:3, 3] = [0.3 * i, 0.0, 0.1 * i]
        out.append((i, 1_000 + i, pts, rgb, T))
    return out


def test_background_map_equals_the_synchronous_one_and_reports_every_keyframe_in_order():
    frames = _keyframes(12)
    reference = VoxelMap(0.1, 1500)
    for key, _, pts, rgb, T in frames:
        reference.add_keyframe(key, pts, rgb, T_odom_points=T)
    updates = []
    worker = MapFusionWorker(VoxelMap(0.1, 1500), on_update=lambda stamp, xyz, rgb: updates.append((stamp, len(xyz))))
    for key, stamp, pts, rgb, T in frames:
        worker.submit(key, stamp, pts, rgb, T)
    assert worker.flush(10.0)
    xyz, rgb = worker.map.points()
    ref_xyz, ref_rgb = reference.points()
    np.testing.assert_array_equal(xyz, ref_xyz)      # same operations in the same order: bit-identical
    np.testing.assert_array_equal(rgb, ref_rgb)
    assert [s for s, _ in updates] == [stamp for _, stamp, *_ in frames]
    assert updates[-1][1] == len(ref_xyz) <= 1500
    stats = worker.stats()
    assert stats["map_keyframes_fused"] == 12 and stats["map_queue"] == 0 and "map_last_error" not in stats
    worker.close()


def test_back_pressure_loses_nothing_and_clear_keeps_its_place():
    frames = _keyframes(6, seed=1)
    gate = threading.Event()
    seen = []

    def slow(stamp, xyz, rgb):
        gate.wait(5.0)
        seen.append((stamp, len(xyz)))

    worker = MapFusionWorker(VoxelMap(0.1, 10_000), on_update=slow, max_pending=1)
    done = threading.Event()

    def producer():
        for key, stamp, pts, rgb, T in frames[:3]:
            worker.submit(key, stamp, pts, rgb, T)
        worker.clear()
        for key, stamp, pts, rgb, T in frames[3:]:
            worker.submit(key, stamp, pts, rgb, T)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    time.sleep(0.3)
    assert not done.is_set()              # the producer waits for room instead of dropping
    gate.set()
    assert done.wait(10.0) and worker.flush(10.0)
    assert [s for s, _ in seen] == [stamp for _, stamp, *_ in frames]
    # after the clear the map holds only keyframes 3..5
    reference = VoxelMap(0.1, 10_000)
    for key, _, pts, rgb, T in frames[3:]:
        reference.add_keyframe(key, pts, rgb, T_odom_points=T)
    np.testing.assert_array_equal(worker.map.points()[0], reference.points()[0])
    assert seen[3][1] == len(_first_only(frames[3]))   # the first keyframe after the clear starts a new map
    assert worker.stats()["map_submit_waits"] >= 1
    worker.close()
    assert not worker._thread.is_alive()


def _first_only(frame):
    key, _, pts, rgb, T = frame
    single = VoxelMap(0.1, 10_000)
    single.add_keyframe(key, pts, rgb, T_odom_points=T)
    return single.points()[0]


def test_a_failing_keyframe_is_reported_and_the_next_one_is_fused():
    worker = MapFusionWorker(VoxelMap(0.1, 1000))
    worker.submit(0, 1, np.zeros((4, 2)), None, None)          # wrong shape: add_keyframe raises
    key, stamp, pts, rgb, T = _keyframes(1)[0]
    worker.submit(key, stamp, pts, rgb, T)
    assert worker.flush(10.0)
    stats = worker.stats()
    assert "points must have shape" in stats["map_last_error"]
    assert stats["map_keyframes_fused"] == 1 and stats["map_points"] == len(worker.map) > 0
    worker.close()
