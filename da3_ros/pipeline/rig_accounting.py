"""Per-camera frame accounting of a camera rig (ROS-free): every received frame ends in exactly one place.

A camera's frame is first offered to the rig synchroniser (``rig_sync``), which groups it, drops it with a
reason (``superseded``, ``no_partner``, ``queue_overflow``, ``late``, ``flushed``) or keeps it pending. A
group then reaches the inference worker, or is replaced in the one-slot mailbox by a newer group (``busy``),
or fails in the worker (``bad_input``, ``failed``); each group outcome counts once for every camera. So per
camera, at every moment::

    received == processed + dropped + pending + in_flight

with ``pending`` the synchroniser's waiting frames and ``in_flight`` the groups handed to the worker and not
finished yet (0 once the worker is idle). ``RigFrameAccounting.snapshot`` gives the counters for
/diagnostics (``<camera>_received``, ``<camera>_processed``, ``<camera>_dropped``, ``<camera>_dropped_<reason>``,
``<camera>_pending``) and whether the identity holds.
"""
from __future__ import annotations

import threading
from typing import Dict, Sequence

from .frame_accounting import DROP_REASONS
from .rig_sync import RigSyncStats

__all__ = ["GROUP_OUTCOMES", "RigFrameAccounting"]

#: what can happen to a group after the synchroniser: processed, or one of the node's drop reasons
GROUP_OUTCOMES = ("processed", *DROP_REASONS)


class RigFrameAccounting:
    """Group outcomes of a rig (thread-safe); combined with the synchroniser's per-camera counters."""

    def __init__(self, camera_names: Sequence[str]):
        self.camera_names = tuple(camera_names)
        self._lock = threading.Lock()
        self._outcomes: Dict[str, int] = {k: 0 for k in GROUP_OUTCOMES}
        self._handed_over = 0

    def on_group(self) -> None:
        """A complete group left the synchroniser (towards the worker's mailbox)."""
        with self._lock:
            self._handed_over += 1

    def on_outcome(self, outcome: str) -> None:
        """A handed-over group was processed or dropped (``GROUP_OUTCOMES``)."""
        if outcome not in self._outcomes:
            raise ValueError(f"outcome must be one of {GROUP_OUTCOMES}, got {outcome!r}")
        with self._lock:
            self._outcomes[outcome] += 1

    def snapshot(self, sync: RigSyncStats) -> dict:
        """Per-camera counters and ``rig_frames_balanced`` (the identity of the module docstring)."""
        with self._lock:
            outcomes = dict(self._outcomes)
            handed = self._handed_over
        finished = sum(outcomes.values())
        in_flight = handed - finished
        group_drops = finished - outcomes["processed"]
        out: dict = {"rig_groups": sync.groups, "rig_groups_processed": outcomes["processed"],
                     "rig_groups_in_flight": in_flight}
        balanced = True
        for c, name in enumerate(self.camera_names):
            dropped = sync.dropped_total(c) + group_drops
            out[f"{name}_received"] = sync.received[c]
            out[f"{name}_processed"] = outcomes["processed"]
            out[f"{name}_dropped"] = dropped
            for reason, counts in sync.dropped.items():
                if counts[c]:
                    out[f"{name}_dropped_{reason}"] = counts[c]
            for reason in GROUP_OUTCOMES[1:]:
                if outcomes[reason]:
                    out[f"{name}_dropped_{reason}"] = outcomes[reason]
            out[f"{name}_pending"] = sync.pending[c]
            # a group is grouped once per camera in the synchroniser
            balanced &= (sync.grouped[c] == handed
                         and sync.received[c] == outcomes["processed"] + dropped + sync.pending[c] + in_flight)
        out["rig_frames_balanced"] = balanced
        return out
