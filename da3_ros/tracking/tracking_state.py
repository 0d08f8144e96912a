"""Tracking state of the visual odometry, for /diagnostics and the publishing convention (ROS-free).

States (``TrackingState``), after the frame just processed:

============== ======================================================================================
state          meaning
============== ======================================================================================
initialising   no frame accepted since start-up or the last reset (``~/reset``, bag loop); no pose
tracking       the newest frame's window was aligned into the odometry frame: its pose is published
lost           the last ``lost_after`` frames' windows were rejected: no pose, no TF, no odometry is
               published for them (the isaac_ros_visual_slam convention); /diagnostics WARN
reinitialised  the tracker re-anchored a new keyframe chain at the last accepted pose (after too many
               rejected windows): poses are published again, but the trajectory may have a kink and the
               scale restarted; held for ``reinitialised_hold`` accepted frames, then ``tracking``
============== ======================================================================================

Transitions: an accepted frame -> ``reinitialised`` when the tracker says so, else ``tracking`` (or
stays ``reinitialised`` while it is held); a rejected frame -> ``lost`` once ``lost_after`` rejections
in a row happened after the first accepted frame (before it the state stays ``initialising``);
:meth:`TrackingStateMachine.reset` -> ``initialising``. Counters (episodes lost, frames lost,
re-initialisations, resets) are kept for /diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["INITIALISING", "TRACKING", "LOST", "REINITIALISED", "TRACKING_STATES", "TrackingStateConfig",
           "TrackingStatus", "TrackingStateMachine"]

INITIALISING = "initialising"
TRACKING = "tracking"
LOST = "lost"
REINITIALISED = "reinitialised"
TRACKING_STATES = (INITIALISING, TRACKING, LOST, REINITIALISED)


@dataclass(frozen=True)
class TrackingStateConfig:
    """``lost_after``: consecutive rejected frames that make the state ``lost`` (1 = the first frame
    without a pose); ``reinitialised_hold``: accepted frames the ``reinitialised`` state is held for."""

    lost_after: int = 1
    reinitialised_hold: int = 10

    def __post_init__(self):
        if self.lost_after < 1:
            raise ValueError(f"lost_after must be >= 1, got {self.lost_after}")
        if self.reinitialised_hold < 1:
            raise ValueError(f"reinitialised_hold must be >= 1, got {self.reinitialised_hold}")


@dataclass(frozen=True)
class TrackingStatus:
    """The state after the latest frame, and counters since start-up (``resets`` included)."""

    state: str = INITIALISING
    reason: str = "no frame yet"
    since_stamp: Optional[float] = None   # stamp (s) of the frame that entered the state
    frames_in_state: int = 0
    consecutive_rejections: int = 0
    lost_episodes: int = 0
    lost_frames: int = 0
    reinitialisations: int = 0
    resets: int = 0

    @property
    def publishes_pose(self) -> bool:
        """Whether the latest frame's pose is published (``tracking`` / ``reinitialised``)."""
        return self.state in (TRACKING, REINITIALISED)

    @property
    def warn(self) -> bool:
        """/diagnostics level WARN (lost)."""
        return self.state == LOST

    def summary(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason else self.state


class TrackingStateMachine:
    """Feed every processed frame of a tracking pipeline with :meth:`on_frame`; see the module docstring."""

    def __init__(self, config: Optional[TrackingStateConfig] = None):
        self.config = config if config is not None else TrackingStateConfig()
        self._status = TrackingStatus()
        self._hold = 0

    @property
    def status(self) -> TrackingStatus:
        return self._status

    @property
    def state(self) -> str:
        return self._status.state

    def _enter(self, state: str, reason: str, stamp: Optional[float], **changes) -> TrackingStatus:
        s = self._status
        same = state == s.state
        values = dict(state=state, reason=reason, since_stamp=s.since_stamp if same else stamp,
                      frames_in_state=s.frames_in_state + 1 if same else 1,
                      consecutive_rejections=s.consecutive_rejections, lost_episodes=s.lost_episodes,
                      lost_frames=s.lost_frames, reinitialisations=s.reinitialisations, resets=s.resets)
        values.update(changes)
        self._status = TrackingStatus(**values)
        return self._status

    def on_frame(self, *, accepted: bool, reinitialised: bool = False, stamp: Optional[float] = None,
                 reason: str = "") -> TrackingStatus:
        """One processed frame: ``accepted`` (a pose was produced), ``reinitialised`` (the tracker
        re-anchored on it), ``reason`` (the tracker's, e.g. why the window was rejected)."""
        s = self._status
        if accepted:
            if reinitialised and s.state != INITIALISING:
                self._hold = self.config.reinitialised_hold
                return self._enter(REINITIALISED, reason or "re-anchored at the last accepted pose", stamp,
                                   consecutive_rejections=0, reinitialisations=s.reinitialisations + 1)
            if s.state == REINITIALISED and self._hold > 1:
                self._hold -= 1
                return self._enter(REINITIALISED, s.reason, stamp, consecutive_rejections=0)
            self._hold = 0
            why = "recovered" if s.state == LOST else "ok"
            return self._enter(TRACKING, why, stamp, consecutive_rejections=0)
        rejections = s.consecutive_rejections + 1
        if s.state == INITIALISING:
            return self._enter(INITIALISING, reason or "first window not accepted", stamp,
                               consecutive_rejections=rejections)
        if rejections >= self.config.lost_after:
            newly = s.state != LOST
            return self._enter(LOST, reason or "window rejected", stamp, consecutive_rejections=rejections,
                               lost_episodes=s.lost_episodes + int(newly), lost_frames=s.lost_frames + 1)
        return self._enter(s.state, s.reason, stamp, consecutive_rejections=rejections)

    def reset(self, reason: str = "reset", stamp: Optional[float] = None) -> TrackingStatus:
        """A new trajectory (``~/reset``, time jumped back): back to ``initialising``."""
        self._hold = 0
        s = self._status
        self._status = TrackingStatus(state=INITIALISING, reason=reason, since_stamp=stamp, frames_in_state=0,
                                      consecutive_rejections=0, lost_episodes=s.lost_episodes,
                                      lost_frames=s.lost_frames, reinitialisations=s.reinitialisations,
                                      resets=s.resets + 1)
        return self._status
