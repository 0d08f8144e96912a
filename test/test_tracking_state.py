"""TrackingStateMachine: initialising -> tracking -> lost -> reinitialised -> tracking, counters, reset."""
import pytest

from da3_ros.tracking.tracking_state import (INITIALISING, LOST, REINITIALISED, TRACKING, TrackingStateConfig,
                                             TrackingStateMachine)


def test_full_cycle_and_counters():
    sm = TrackingStateMachine(TrackingStateConfig(lost_after=1, reinitialised_hold=3))
    assert sm.state == INITIALISING and not sm.status.publishes_pose
    # a rejected first window keeps initialising (there is nothing to be lost from yet)
    assert sm.on_frame(accepted=False, stamp=0.0, reason="no_valid_depth").state == INITIALISING
    s = sm.on_frame(accepted=True, stamp=0.1)
    assert s.state == TRACKING and s.publishes_pose and not s.warn and s.since_stamp == 0.1
    sm.on_frame(accepted=True, stamp=0.2)
    assert sm.status.frames_in_state == 2
    s = sm.on_frame(accepted=False, stamp=0.3, reason="scale_jump")
    assert s.state == LOST and s.warn and not s.publishes_pose and s.reason == "scale_jump"
    for k in range(3):
        s = sm.on_frame(accepted=False, stamp=0.4 + 0.1 * k, reason="scale_jump")
    assert (s.state, s.lost_episodes, s.lost_frames, s.consecutive_rejections) == (LOST, 1, 4, 4)
    assert s.since_stamp == 0.3
    s = sm.on_frame(accepted=True, reinitialised=True, stamp=0.8, reason="reinitialised after: scale_jump")
    assert (s.state, s.reinitialisations, s.consecutive_rejections) == (REINITIALISED, 1, 0) and s.publishes_pose
    assert sm.on_frame(accepted=True, stamp=0.9).state == REINITIALISED   # held for 3 accepted frames
    assert sm.on_frame(accepted=True, stamp=1.0).state == REINITIALISED
    assert sm.on_frame(accepted=True, stamp=1.1).state == TRACKING
    # a single rejection after a recovery starts a second episode; an accepted window recovers directly
    assert sm.on_frame(accepted=False, stamp=1.2).state == LOST
    s = sm.on_frame(accepted=True, stamp=1.3)
    assert (s.state, s.reason, s.lost_episodes, s.lost_frames) == (TRACKING, "recovered", 2, 5)
    s = sm.reset("~/reset", stamp=1.4)
    assert (s.state, s.resets, s.lost_episodes) == (INITIALISING, 1, 2)
    assert sm.on_frame(accepted=True, stamp=1.5).state == TRACKING


def test_lost_after_two_and_reinitialised_from_initialising():
    sm = TrackingStateMachine(TrackingStateConfig(lost_after=2))
    # the very first accepted window (tracker: initialised, not re-initialised) -> tracking even if flagged
    assert sm.on_frame(accepted=True, reinitialised=True).state == TRACKING
    assert sm.on_frame(accepted=False).state == TRACKING   # one rejection is tolerated
    assert sm.on_frame(accepted=False).state == LOST
    with pytest.raises(ValueError):
        TrackingStateConfig(lost_after=0)
