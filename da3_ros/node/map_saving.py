"""The node side of the loop-closure map (no rclpy): ``~/save_map``'s folder and answer, the /diagnostics keys.

``map_directory`` empty means ``$ROS_HOME/da3_maps`` with ``ROS_HOME`` defaulting to ``~/.ros`` (where ROS 2 keeps
its logs); ``~`` is expanded. The processor writes a new folder under it (``WindowProcessor.save_map``, thread-safe)
and returns its absolute path: the answer is ``(True, path)``, or ``(False, reason)`` when there is nothing to save,
loop closure is off, or the folder cannot be written. /diagnostics shows ``WindowProcessor.loop_stats()`` flattened
(:func:`loop_diagnostics`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["DEFAULT_MAP_SUBDIRECTORY", "loop_diagnostics", "map_save_root", "save_map_answer"]

#: the folder under ROS_HOME that ``map_directory: ""`` means
DEFAULT_MAP_SUBDIRECTORY = "da3_maps"


def map_save_root(map_directory: str, environ: Optional[Mapping[str, str]] = None) -> Path:
    """The folder ``~/save_map`` writes into (module docstring)."""
    env = os.environ if environ is None else environ
    text = str(map_directory).strip()
    if text:
        return Path(os.path.expanduser(text))
    ros_home = env.get("ROS_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".ros")
    return Path(os.path.expanduser(ros_home)) / DEFAULT_MAP_SUBDIRECTORY


def save_map_answer(processor, root: Path) -> Tuple[bool, str]:
    """(success, message) of ``~/save_map``: the saved folder's absolute path, or why nothing was saved."""
    if processor is None:
        return False, "not configured: no map to save (configure the node first)"
    try:
        path = processor.save_map(str(root))
    except Exception as exc:   # nothing to save, loop closure off, a file system error: the caller is told why
        return False, f"map not saved: {type(exc).__name__}: {exc}"
    return True, str(Path(path).resolve())


def loop_diagnostics(stats: Mapping[str, Any]) -> Dict[str, Any]:
    """``WindowProcessor.loop_stats()`` as flat /diagnostics values: every key as it is, except ``loop_rejected``
    (reason -> count), which becomes its total plus ``loop_rejected_<reason>`` per reason (sorted); ``relocalised``
    is also ``tracking_relocalised`` next to the tracking state."""
    out: Dict[str, Any] = {}
    for key, value in stats.items():
        if key == "loop_rejected" and isinstance(value, Mapping):
            out["loop_rejected"] = sum(int(v) for v in value.values())
            out.update({f"loop_rejected_{reason}": int(n) for reason, n in sorted(value.items())})
        else:
            out[key] = value
    if "relocalised" in stats:
        out["tracking_relocalised"] = bool(stats["relocalised"])
    return out
