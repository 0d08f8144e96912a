"""`ViewTokenCache`: each view's encoder result (a split export's per-view tokens), kept while the view is
in the window.

The caller names every view of a window with a stable hashable key (the pipeline: ``(snapshot_id,
camera)``). A view whose key was in the previous window and whose image is byte-identical is not encoded
again; every entry whose key is not in the current window is dropped (the cache holds at most N views). The
image comparison makes a reused key safe: a key that comes back with another image is encoded again, so the
cache can never hand out another image's tokens.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, List, Sequence, Tuple

import numpy as np


class ViewTokenCache:
    """Encoder results by view key, bounded by the current window (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: Dict[Hashable, Tuple[np.ndarray, Any]] = {}
        self.encoded_total = 0
        self.reused_total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> List[Hashable]:
        return list(self._entries)

    def tokens_for(self, keys: Sequence[Hashable], images: np.ndarray,
                   encode: Callable[[int], Any]) -> Tuple[List[Any], int]:
        """(the encoder result of every view, how many views were encoded now).

        ``images[v]`` is view ``v``'s input; ``encode(v)`` encodes it. Views whose key is cached with the same
        image reuse the cached result; afterwards only the current window's keys are kept."""
        if len(keys) != len(images):
            raise ValueError(f"{len(keys)} view keys for {len(images)} views")
        values, encoded = [], 0
        for v, key in enumerate(keys):
            entry = self._entries.get(key)
            if entry is not None and np.array_equal(entry[0], images[v]):
                values.append(entry[1])
                continue
            value = encode(v)
            self._entries[key] = (np.array(images[v], copy=True), value)
            values.append(value)
            encoded += 1
        current = set(keys)
        for key in [k for k in self._entries if k not in current]:
            del self._entries[key]
        self.encoded_total += encoded
        self.reused_total += len(keys) - encoded
        return values, encoded

    def clear(self) -> None:
        self._entries.clear()
