"""Geometric verification of loop candidates (issue 20) with the window oracle: a true revisit is accepted with
the right relative pose; a mirrored look-alike (same descriptor, so search proposes it) and a place without
overlap are rejected, each with its reason."""
import numpy as np
import pytest

from da3_ros.geometry.transforms import rotation_angle
from da3_ros.loop.keyframe_database import KeyframeDatabase
from da3_ros.loop.loop_verification import LoopVerifier
from da3_ros.synthetic.image_descriptor import appearance_descriptor
from da3_ros.synthetic.sequence import SyntheticSequence
from da3_ros.synthetic.window_oracle import WindowOracle

W, H = 128, 96
CANDIDATES = (40, 34, 46)   # the candidate keyframe first, then its neighbours
QUERY = 43


@pytest.fixture(scope="module")
def world():
    seq = SyntheticSequence("room_tour", width=W, height=H)
    verifier = LoopVerifier()
    keyframes = {}
    for i in CANDIDATES:
        rgb, depth = seq.render(i)
        keyframes[i] = verifier.keyframe(i, float(seq.stamps[i]), rgb, seq.T_world_cam[i], depth,
                                         np.full_like(depth, 5.0), seq.K)
    return seq, verifier, [keyframes[i] for i in CANDIDATES]


def _oracle_predict(seq, ids, mirror_query=False, seed=0):
    oracle = WindowOracle(seq, seed=seed)

    def predict(images):
        assert images.shape == (len(ids), H, W, 3)
        window = oracle.predict(ids)
        if mirror_query:
            # a network sees each view's own pixels: the query image is the mirror image of the place, so its
            # predicted depth is the mirrored depth, while its appearance makes it register at the place's pose
            window.depth[-1] = window.depth[-1][:, ::-1]
            window.depth_conf[-1] = window.depth_conf[-1][:, ::-1]
        return window
    return predict


def test_true_revisit_is_accepted_with_the_right_pose(world):
    seq, verifier, candidates = world
    for seed in range(3):
        result = verifier.verify("q", seq.render(QUERY)[0], candidates,
                                 _oracle_predict(seq, list(CANDIDATES) + [QUERY], seed=seed), seq.K)
        assert result.ok, result.reason
        truth = seq.T_world_cam[QUERY]
        # oracle pose noise 0.2 deg / 0.2 % of the depth per view, depth noise 1 %: a few cm at 2-4 m
        assert np.linalg.norm(result.T_map_query[:3, 3] - truth[:3, 3]) < 0.05
        assert np.degrees(rotation_angle(result.T_map_query[:3, :3].T @ truth[:3, :3])) < 1.0
        rel_truth = np.linalg.solve(seq.T_world_cam[CANDIDATES[0]], truth)
        assert np.linalg.norm(result.T_candidate_query[:3, 3] - rel_truth[:3, 3]) < 0.05
        assert result.stats["overlap_inlier_ratio"] > 0.8


def test_mirrored_look_alike_is_proposed_and_rejected(world):
    seq, verifier, candidates = world
    mirrored = seq.render(QUERY)[0][:, ::-1].copy()
    db = KeyframeDatabase()
    for i in range(0, 300, 3):
        db.add(i, float(seq.stamps[i]), appearance_descriptor(seq.render(i)[0]), seq.T_world_cam[i])
    proposed = [c.keyframe_id for c in db.query(appearance_descriptor(mirrored), stamp=1e3, min_time_gap_s=0.0,
                                                top_k=3)]
    assert set(proposed) & set(range(36, 52)), proposed   # search alone cannot tell the look-alike apart
    result = verifier.verify("mirror", mirrored, candidates,
                             _oracle_predict(seq, list(CANDIDATES) + [QUERY], mirror_query=True), seq.K)
    assert not result.ok
    assert result.reason.startswith("overlap: query geometry disagrees"), result.reason
    assert result.stats["overlap_inlier_ratio"] < verifier.config.min_overlap_inlier_ratio


def test_a_place_without_overlap_is_rejected(world):
    seq, verifier, candidates = world
    far = 280   # the other end of the room, looking the other way
    result = verifier.verify("far", seq.render(far)[0], candidates,
                             _oracle_predict(seq, list(CANDIDATES) + [far]), seq.K)
    assert not result.ok and result.reason.startswith("overlap:"), result.reason
