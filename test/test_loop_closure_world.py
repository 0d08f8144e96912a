"""Issue 20's evidence, in-process: three laps of one loop with a drifting oracle, with and without loop closure,
a mirrored look-alike copy of the room that is proposed and rejected, and a restart that relocalises in the saved
map (test/loop_world.py builds the world; bench/bench_loop.py prints the same numbers as JSON)."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.geometry.alignment import umeyama
from da3_ros.geometry.transforms import rotation_angle
from da3_ros.loop.map_store import MapFormatError, load_map
from da3_ros.loop.pose_graph import gtsam_unavailable_reason
from da3_ros.pipeline.processor_config import ProcessorConfig
from da3_ros.pipeline.window_processor import WindowProcessor
from da3_ros.backends.oracle_backend import OracleBackend

from loop_world import ate, path_length, run_loop_world, world

pytestmark = pytest.mark.skipif(bool(gtsam_unavailable_reason()), reason=gtsam_unavailable_reason())

#: a loop is true when the two keyframes' cameras are this close in the ground truth (metres, degrees): the
#: circle's keyframes are ~0.25 m apart, a false loop (the look-alike copy is 20 m away, other places of the
#: circle >= 0.5 m) is far beyond
TRUE_LOOP_M, TRUE_LOOP_DEG = 0.3, 15.0


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop_world")
    seq, spec = world(tmp)
    frames = list(range(len(seq)))
    without = run_loop_world(seq, spec, frames, loop_closure=False)
    with_loops = run_loop_world(seq, spec, frames, loop_closure=True, save_directory=str(tmp / "maps"))
    return seq, spec, with_loops, without


def _laps(run):
    return [k for k in run.keyframes if run.segments[k].startswith("lap")]


def test_three_laps_loop_closure_cuts_the_drift_and_every_loop_is_true(drives, record_property):
    seq, _, run, without = drives
    laps = _laps(run)
    length = path_length(run.T_world_cam, laps)
    # each drive has its own keyframes (verification windows draw from the oracle's random stream too)
    ate_without = ate(without.T_map_cam, without.T_world_cam, _laps(without))
    ate_with = ate(run.T_map_cam, run.T_world_cam, laps)
    record_property("ate_without_m", ate_without)
    record_property("ate_with_m", ate_with)
    # the oracle's heading bias must make the un-closed trajectory drift (else the test would pass vacuously):
    # ATE after the best similarity alignment (a lower bound of the drift), >= 3 % of the path length
    assert ate_without >= 0.03 * length, (ate_without, length)
    assert ate_with <= ate_without / 3.0, (ate_with, ate_without)
    stats = run.stats
    assert stats["loop_closure"] == "on" and stats["loop_accepted"] >= 5
    assert stats["map_keyframes"] == len(run.keyframes)
    assert stats["last_optimisation_keyframes"] > 0 and stats["last_optimisation_ms"] > 0
    loops = [e for e in run.events if e.kind == "loop"]
    assert len(loops) == stats["loop_accepted"]
    for e in loops:   # every accepted loop is true: the pair is one place in the ground truth
        Ta, Tb = run.T_world_cam[e.candidate_id], run.T_world_cam[e.query_id]
        assert np.linalg.norm(Ta[:3, 3] - Tb[:3, 3]) <= TRUE_LOOP_M, e
        assert np.degrees(rotation_angle(Ta[:3, :3].T @ Tb[:3, :3])) <= TRUE_LOOP_DEG, e
        assert run.segments[e.query_id].startswith("lap"), e
    assert without.stats["loop_closure"] == "off" and without.stats["loop_accepted"] == 0


def test_the_mirrored_look_alike_is_proposed_and_rejected(drives):
    _, _, run, _ = drives
    look_alike = [e for e in run.events if run.segments[e.query_id] == "look_alike"]
    assert len(look_alike) >= 3, "the mirror-invariant descriptor proposes the copy's keyframes"
    assert all(e.kind == "rejected" and e.reason for e in look_alike), look_alike
    assert all(e.similarity >= 0.8 for e in look_alike)   # proposed: as similar as the search's threshold
    reasons = run.stats["loop_rejected"]
    assert sum(reasons.values()) >= len(look_alike) and set(reasons) <= {"gates", "neighbour", "overlap"}


def test_restart_relocalises_in_the_saved_map(drives, tmp_path, record_property):
    seq, spec, run, _ = drives
    saved = load_map(run.saved)
    assert len(saved.database) == len(run.keyframes) and saved.keyframes
    assert saved.graph.loop_count() > 0
    # the old map in the world: the similarity that best aligns its keyframes to the ground truth (the first
    # session's map-to-world alignment); the ground truth of the second drive is expressed in the old map by it
    S = umeyama(np.stack([run.T_map_cam[k][:3, 3] for k in _laps(run)]),
                np.stack([run.T_world_cam[k][:3, 3] for k in _laps(run)]), with_scale=True)
    s_map = float(np.cbrt(np.linalg.det(S[:3, :3])))
    R_map = S[:3, :3] / s_map
    start = 70   # half way round lap 1: a mapped place
    frames = list(range(start, start + 60))
    second = run_loop_world(seq, spec, frames, map_load_directory=run.saved)
    assert second.stats["loaded_map"] == run.saved and second.stats["relocalised"]
    first = second.outcomes.index("relocalised")
    ratio = second.stats["relocalisation_ratio"]     # old map units per new odometry unit (the last update's)
    assert np.isfinite(ratio) and ratio > 0
    assert first <= 30, "relocalised within 3 s (10 frames per second) of driving into the mapped place"
    event = next(e for e in second.events if e.kind == "relocalised")
    assert event.query_id == first

    def error(key):
        """(metres, degrees) of the published T_map_cam against the ground truth in the old map's frame."""
        T = second.T_map_cam_published[key]     # T_map_odom @ T_odom_cam as the node publishes it for that frame
        T_world = second.T_world_cam[key]
        centre = S[:3, :3] @ (ratio_at[key] * T[:3, 3]) + S[:3, 3]
        return (float(np.linalg.norm(centre - T_world[:3, 3])),
                float(np.degrees(rotation_angle((R_map @ T[:3, :3]).T @ T_world[:3, :3]))))

    ratio_at = second.relocalisation_ratios     # old map units per odometry unit when the frame was published
    error_m, error_deg = error(first)
    record_property("relocalisation_error_m", error_m)
    record_property("relocalisation_error_deg", error_deg)
    record_property("last_error_m", error(last := second.keyframes[-1])[0])
    # 5 cm / 2 deg: the bound. Measured 0.67 cm / 1.60 deg: it holds the old map's own error at that place
    # (its orientations carry ~2 deg of the biased oracle that no graph can see, notes/loop.md) plus one
    # verification's (the oracle's window noise, ~0.2 deg / 0.2 % of the depth per view, seeded: any CPU)
    assert error_m <= 0.05 and error_deg <= 2.0, (error_m, error_deg)
    # T_map_odom puts the rest of the drive into the old map: the last keyframe within 5 cm (measured 3.54 cm, the
    # same in 3 plain runs and 3 under 2 busy loops: the evidence waits for the optimiser, and the oracle is seeded)
    assert error(last)[0] <= 0.05, error(last)
    # the plausibility gate refuses the 30 cm update (keyframe 11: 6.7 % of the depth / 3.3 deg off the current
    # correction right after the relocalisation; its bound 4 % + 10 % of the path); every applied update is within
    refused = [e for e in second.events if e.reason.startswith("implausible_jump")]
    assert [e.query_id for e in refused] == [11] and second.stats["loop_rejected"] == {"implausible_jump": 1}
    assert all(e.jump <= 0.06 for e in second.events if e.kind == "map_update")   # measured <= 4.6 %


def test_a_bad_map_folder_fails_at_construction_and_off_says_why(drives, tmp_path):
    _, spec, _, _ = drives
    (tmp_path / "not_a_map").mkdir()
    with pytest.raises(MapFormatError, match="no map.json"):
        WindowProcessor(OracleBackend(str(spec)), ProcessorConfig(map_load_directory=str(tmp_path / "not_a_map")))
    proc = WindowProcessor(OracleBackend(str(spec)), ProcessorConfig(loop_closure=False))
    assert proc.map_correction() is None and proc.loop_stats()["loop_closure"] == "off"
    with pytest.raises(RuntimeError, match="not active"):
        proc.save_map(str(tmp_path / "maps"))
    proc.close()
