"""Loop closure core (issue 20, ROS-free): keyframe descriptor search, the gtsam pose graph (SE(3) and Sim(3),
robust kernels) on its own thread, and the saved map's round trip."""
import threading

import numpy as np
import pytest

from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle
from da3_ros.loop.graph_optimizer import PoseGraphOptimizer
from da3_ros.loop.keyframe_database import KeyframeDatabase
from da3_ros.loop.map_store import MapFormatError, load_map, read_ply, save_map, write_ply
from da3_ros.loop.pose_graph import EdgeKind, PoseGraph, gtsam_unavailable_reason, relative_pose

needs_gtsam = pytest.mark.skipif(bool(gtsam_unavailable_reason()), reason=gtsam_unavailable_reason() or "-")


def _unit(v):
    return v / np.linalg.norm(v)


def test_search_respects_time_gap_and_ranks_by_cosine():
    rng = np.random.default_rng(0)
    db = KeyframeDatabase(initial_capacity=2)   # grows several times
    base = [_unit(rng.normal(size=64)) for _ in range(50)]
    for i, d in enumerate(base):
        db.add(i, float(i), d, np.eye(4))
    query = _unit(base[10] + 0.3 * _unit(rng.normal(size=64)))
    hits = db.query(query, stamp=49.0, min_time_gap_s=30.0, top_k=3)
    assert hits[0].keyframe_id == 10 and hits[0].similarity > 0.9
    assert [h.similarity for h in hits] == sorted([h.similarity for h in hits], reverse=True)
    assert all(h.stamp <= 19.0 for h in hits)
    assert db.query(query, stamp=40.0, min_time_gap_s=30.0, top_k=3)[0].keyframe_id == 10   # 10 s: just old enough
    assert all(h.keyframe_id != 10 for h in db.query(query, stamp=40.0, min_time_gap_s=30.5, top_k=3))
    assert db.query(query, stamp=10.0, min_time_gap_s=30.0) == []
    assert db.query(query, stamp=49.0, min_time_gap_s=30.0, min_similarity=0.99) == []
    with pytest.raises(ValueError, match="D = 64"):
        db.add(99, 99.0, np.ones(32), np.eye(4))
    with pytest.raises(ValueError, match="already"):
        db.add(3, 3.0, base[3], np.eye(4))


def _loop_truth(n=24, radius=2.0):
    """n keyframes on a circle (metres), camera looking along the tangent."""
    out = []
    for i in range(n):
        a = 2 * np.pi * i / n
        out.append(make_transform(rotation_from_axis_angle([0, 0, a + np.pi / 2]),
                                  [radius * np.cos(a), radius * np.sin(a), 0.0]))
    return out


def _drifted_graph(metric, truth, rng, yaw_bias=0.02, scale_drift=1.0):
    graph = PoseGraph(metric=metric)
    pose = truth[0].copy()
    graph.add_keyframe(0, pose)
    for i in range(1, len(truth)):
        rel = relative_pose(truth[i - 1], truth[i])
        noisy = rel @ make_transform(rotation_from_axis_angle([0, 0, yaw_bias]), rng.normal(scale=0.005, size=3))
        if not metric:
            noisy[:3, 3] *= scale_drift ** i    # the window scale drifts along the path
        pose = pose @ noisy
        graph.add_keyframe(i, pose)
        graph.add_edge(i - 1, i, noisy, EdgeKind.WINDOW, sigma_rotation=0.01, sigma_translation=0.02,
                       sigma_log_scale=0.02)
    return graph


def _centre_error(poses, truth):
    return float(np.mean([np.linalg.norm(poses[i][:3, 3] - truth[i][:3, 3]) for i in range(len(truth))]))


@needs_gtsam
@pytest.mark.parametrize("metric", [True, False])
def test_a_loop_constraint_removes_the_drift_and_a_wrong_one_is_down_weighted(metric):
    rng = np.random.default_rng(1)
    truth = _loop_truth()
    graph = _drifted_graph(metric, truth, rng)
    drifted = {k: graph.initial_pose(k) for k in graph.keys}
    before = _centre_error(drifted, truth)
    last = len(truth) - 1
    graph.add_edge(last, 0, relative_pose(truth[last], truth[0]), EdgeKind.LOOP, sigma_rotation=0.01,
                   sigma_translation=0.02)
    graph.add_edge(last - 1, 1, relative_pose(truth[last - 1], truth[1]), EdgeKind.LOOP, sigma_rotation=0.01,
                   sigma_translation=0.02)
    result = graph.optimize()
    after = _centre_error(result.poses, truth)
    assert before > 0.3                       # 0.02 rad per edge over 24 edges: ~0.5 m of drift
    assert after < before / 5, (before, after)
    assert result.final_error < result.initial_error and result.loops == 2 and result.keyframes == 24
    # a wrong loop (keyframe 12 "is" keyframe 0) under the Cauchy kernel moves the map far less than the
    # same constraint without a robust kernel
    graph_wrong = graph.copy()
    graph_wrong.add_edge(12, 0, np.eye(4), EdgeKind.LOOP, sigma_rotation=0.01, sigma_translation=0.02)
    graph_plain = graph.copy()
    graph_plain.add_edge(12, 0, np.eye(4), EdgeKind.LOOP, sigma_rotation=0.01, sigma_translation=0.02,
                         kernel="none")
    robust = _centre_error(graph_wrong.optimize().poses, truth)
    plain = _centre_error(graph_plain.optimize().poses, truth)
    assert robust < plain / 2, (robust, plain)


@needs_gtsam
def test_optimizer_runs_on_its_own_thread_and_newest_request_wins():
    truth = _loop_truth(12)
    graph = _drifted_graph(True, truth, np.random.default_rng(2))
    seen = []
    worker = PoseGraphOptimizer(on_result=lambda r: seen.append((threading.get_ident(), r.keyframes)))
    try:
        worker.request(graph)
        assert worker.wait_idle(30.0)
        graph.add_edge(11, 0, relative_pose(truth[11], truth[0]), EdgeKind.LOOP, sigma_rotation=0.01,
                       sigma_translation=0.02)
        worker.request(graph)
        assert worker.wait_idle(30.0)
    finally:
        worker.close()
    assert [k for _, k in seen] == [12, 12]
    assert {ident for ident, _ in seen} == {worker.thread_ident} != {threading.get_ident()}
    stats = worker.stats()
    assert stats["optimisations"] == 2 and stats["last_optimisation_loops"] == 1 and "last_error" not in stats


def test_map_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    db = KeyframeDatabase()
    truth = _loop_truth(6)
    for i, T in enumerate(truth):
        db.add(i, 0.5 * i, rng.normal(size=16), T)
    graph = PoseGraph(metric=False)
    for i, T in enumerate(truth):
        graph.add_keyframe(i, T)
    graph.add_edge(0, 5, relative_pose(truth[0], truth[5]), EdgeKind.LOOP, sigma_rotation=0.01,
                   sigma_translation=0.02, sigma_log_scale=0.05)
    points = rng.normal(size=(1000, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(1000, 3), dtype=np.uint8)
    folder = save_map(tmp_path / "map_a", db, graph, points, colours, frame="map", unit="model")
    assert sorted(p.name for p in folder.iterdir()) == ["cloud.ply", "keyframes.npz", "map.json", "pose_graph.json"]
    loaded = load_map(folder)
    ids, stamps, desc, poses = loaded.database.arrays()
    ids0, stamps0, desc0, poses0 = db.arrays()
    assert ids == ids0 and loaded.unit == "model" and loaded.frame == "map"
    np.testing.assert_array_equal(stamps, stamps0)
    np.testing.assert_array_equal(desc, desc0)
    np.testing.assert_array_equal(poses, poses0)
    np.testing.assert_array_equal(loaded.points, points)
    np.testing.assert_array_equal(loaded.colours, colours)
    assert loaded.graph.records() == graph.records()
    with pytest.raises(FileExistsError):
        save_map(folder, db, graph, points)
    write_ply(tmp_path / "plain.ply", points)
    assert read_ply(tmp_path / "plain.ply")[1] is None
    (folder / "map.json").write_text('{"format": "something_else", "version": 1}')
    with pytest.raises(MapFormatError, match="something_else"):
        load_map(folder)
    with pytest.raises(MapFormatError, match="no map.json"):
        load_map(tmp_path)
