"""Whether an optional ROS 2 package that a real install has (tf2_ros, message_filters) imports here."""
from __future__ import annotations

import importlib
from typing import Tuple


def importable(module: str) -> Tuple[bool, str]:
    """``(True, "")`` when ``import module`` works, else ``(False, reason)``."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install failing at import time
        return False, f"{module} is not importable ({type(exc).__name__}: {exc})"
    return True, ""
