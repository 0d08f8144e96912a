"""``LoopCloser``'s wheel-odometry edges (ROS-free, no inference: the keyframes' descriptors are orthogonal, so no
loop is proposed and the verification's backend is never called)."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.geometry.transforms import make_transform, rotation_from_axis_angle
from da3_ros.loop.loop_closer import LoopCloser
from da3_ros.loop.pose_graph import EdgeKind, gtsam_unavailable_reason

H, W = 24, 32
K = np.array([[30.0, 0.0, 15.5], [0.0, 30.0, 11.5], [0.0, 0.0, 1.0]])
METRES_PER_UNIT = 0.5
STEPS = 8


def _no_inference(images):
    raise AssertionError("no loop should be proposed: the descriptors are orthogonal")


def _drive(with_odometry):
    """A straight 8-keyframe drive, 0.25 m a step: the tracker's poses turn 2 deg a step (a heading drift), the
    wheel odometry (metres) is exact; every other keyframe's odometry is unknown when ``with_odometry`` is
    "partial"."""
    closer = LoopCloser(views=4, metric=False, predict=_no_inference)
    truth = []
    for i in range(STEPS):
        T_true = make_transform(np.eye(3), [0.25 * i, 0.0, 0.0])
        drift = rotation_from_axis_angle([0.0, np.radians(2.0) * i, 0.0])
        T_odom = make_transform(drift, drift @ np.array([0.25 * i / METRES_PER_UNIT, 0.0, 0.0]))
        known = with_odometry == "all" or (with_odometry == "partial" and i % 2 == 0)
        descriptor = np.eye(STEPS)[i].astype(np.float32)
        closer.add_keyframe(i, float(i), np.zeros((H, W, 3), np.uint8), T_odom, np.full((H, W), 4.0, np.float32),
                            np.ones((H, W), np.float32), K, descriptor, T_true if known else None,
                            METRES_PER_UNIT)
        truth.append(T_true)
    closer.close()
    return closer, truth


def test_odometry_edges_join_keyframes_whose_odometry_is_known_in_odometry_units():
    closer, truth = _drive("all")
    edges = [e for e in closer.graph.edges if e.kind == EdgeKind.ODOMETRY]
    assert [(e.a, e.b) for e in edges] == [(i, i + 1) for i in range(STEPS - 1)]
    for e in edges:
        # the wheel odometry's 0.25 m step in odometry units (0.5 m each): 0.5, exact (no arithmetic beyond / 0.5)
        np.testing.assert_allclose(e.T_a_b[:3, 3], [0.25 / METRES_PER_UNIT, 0.0, 0.0], atol=1e-12)
        np.testing.assert_allclose(e.T_a_b[:3, :3], np.eye(3), atol=1e-12)
    assert len([e for e in closer.graph.edges if e.kind == EdgeKind.WINDOW]) == STEPS - 1
    partial, _ = _drive("partial")   # an edge needs the odometry at both of its keyframes
    assert not [e for e in partial.graph.edges if e.kind == EdgeKind.ODOMETRY]
    none, _ = _drive("none")
    assert not [e for e in none.graph.edges if e.kind == EdgeKind.ODOMETRY]
    assert closer.stats()["loop_candidates"] == 0


@pytest.mark.skipif(bool(gtsam_unavailable_reason()), reason=gtsam_unavailable_reason())
def test_odometry_edges_pull_the_optimised_chain_towards_the_wheel_odometry():
    closer, truth = _drive("all")
    alone, _ = _drive("none")

    def heading_error_deg(graph):
        T = graph.optimize().poses[STEPS - 1]
        R = T[:3, :3] / np.cbrt(np.linalg.det(T[:3, :3]))
        return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))

    # window edges alone keep the tracker's 14 deg of drift at the end; the odometry edges (twice the window
    # edges' rotation sigma: a quarter of the weight) pull each step to the weighted mean 2 deg * 4 / (4 + 1):
    # 11.2 deg at the end (Gaussian kernels on both; deterministic: no noise, 0.1 deg is the solver's tolerance)
    assert heading_error_deg(alone.graph) == pytest.approx(14.0, abs=0.1)
    assert heading_error_deg(closer.graph) == pytest.approx(11.2, abs=0.1)


def _relocalised_closer(step_m):
    """A closer relocalised (identity correction) at its first keyframe, then a second keyframe ``step_m`` further
    (median depth 4 units)."""
    closer = LoopCloser(views=4, metric=False, predict=_no_inference)
    for i in range(2):
        T = make_transform(np.eye(3), [step_m * i, 0.0, 0.0])
        closer.add_keyframe(i, float(i), np.zeros((H, W, 3), np.uint8), T, np.full((H, W), 4.0, np.float32),
                            np.ones((H, W), np.float32), K, np.eye(STEPS)[i].astype(np.float32))
        if i == 0:   # the first relocalisation always passes (nothing to compare with); later updates are gated
            assert closer._plausible(closer._keyframes[0], np.eye(4))[1] == ""
            closer._relocalised = True
    return closer


def test_an_implausible_map_update_is_refused_until_a_second_verification_confirms_it():
    closer = _relocalised_closer(0.0)
    kf = closer._keyframes[1]
    # bound with no path since the relocalisation: 0.04 x depth 4 = 0.16 units, 2 deg. A 0.1 unit move passes
    jump, refused = closer._plausible(kf, make_transform(np.eye(3), [0.1, 0.0, 0.0]))
    assert refused == "" and jump == pytest.approx(0.1 / 4.0)
    # a 0.3 unit jump (the 30 cm of notes/loop.md): refused, the reason counted by LoopCloser as implausible_jump
    jump, refused = closer._plausible(kf, make_transform(np.eye(3), [0.4, 0.0, 0.0]))
    assert refused.startswith("implausible_jump") and jump == pytest.approx(0.1)
    # a second verification that disagrees with the refused one (0.4 vs -0.4) is refused as well
    assert closer._plausible(kf, make_transform(np.eye(3), [-0.4, 0.0, 0.0]))[1].startswith("implausible_jump")
    # one that agrees with the refused one within the bound (0.05 units apart) confirms it: applied
    assert closer._plausible(kf, make_transform(np.eye(3), [-0.45, 0.0, 0.0]))[1] == ""
    # a rotation beyond 2 deg is refused like a translation (3 deg about the camera's y axis)
    R = rotation_from_axis_angle([0.0, np.radians(3.0), 0.0])
    assert closer._plausible(kf, make_transform(R, [0.0, 0.0, 0.0]))[1].startswith("implausible_jump")
    # the odometry's drift allowance: after 4 units of path (one median depth) the bound is 0.04 + 0.1 x 1 = 0.14 x
    # depth (0.56 units) and 2 + 20 deg: the same 0.4 unit jump passes
    moved = _relocalised_closer(4.0)
    assert moved._plausible(moved._keyframes[1], make_transform(np.eye(3), [0.4, 0.0, 0.0]))[1] == ""
    closer.close()
    moved.close()


def test_the_verification_store_is_bounded_and_thins_the_most_redundant_keyframe(tmp_path):
    from da3_ros.loop.loop_closer import LoopClosureConfig
    closer = LoopCloser(views=4, metric=False, predict=_no_inference, config=LoopClosureConfig(
        verification_capacity=5))
    # centres (units, median depth 4): keyframe 2 repeats keyframe 1's place (0.01 apart); the others 1 apart
    xs = [0.0, 1.0, 1.01, 2.0, 3.0, 4.0, 5.0, 6.0]
    for i, x in enumerate(xs):
        closer.add_keyframe(i, float(i), np.zeros((H, W, 3), np.uint8), make_transform(np.eye(3), [x, 0.0, 0.0]),
                            np.full((H, W), 4.0, np.float32), np.ones((H, W), np.float32), K,
                            np.eye(STEPS)[i].astype(np.float32))
    stored = [kf.keyframe_id for kf in closer.keyframes_in_map()]
    assert len(stored) == 5 == closer.stats()["verification_keyframes"]
    # 3 evictions, never one of the newest 4: 1 (0.01 from 2), then 2 (0.99 from 3, 0 is 1.01 away), then 3 (1 from
    # 4; 0 is 2 from 3 by then): the place at x = 0 stays covered
    assert stored == [0, 4, 5, 6, 7]
    assert len(closer.graph) == len(closer.database) == len(closer.map_poses()) == 8
    # the saved map: every keyframe in the database and graph, the stored ones' verification payload
    from da3_ros.loop.map_store import load_map, save_map
    folder = save_map(tmp_path / "map", closer.database, closer.graph, np.zeros((1, 3), np.float32), unit="model",
                      keyframes=closer.keyframes_in_map())
    saved = load_map(folder)
    assert len(saved.database) == len(saved.graph) == 8 and [kf.keyframe_id for kf in saved.keyframes] == stored
    np.testing.assert_array_equal(saved.keyframes[1].T_map_cam, saved.database.pose(4))   # its own pose
    closer.close()
