"""``LatestMailbox``: the one-slot mailbox between the subscription callbacks and the inference worker.

``put`` never blocks and replaces an item the worker has not taken yet (the newest wins; the caller counts the
replaced one as dropped "busy"); ``take`` waits for an item (with a timeout); ``close`` wakes the worker.
"""
from __future__ import annotations

import threading

__all__ = ["LatestMailbox"]


class LatestMailbox:
    """One-slot mailbox: ``put`` replaces (and returns) an unconsumed item; ``take`` waits."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        with self._cond:
            replaced, self._item = self._item, item
            self._cond.notify()
        return replaced

    def take(self, timeout: float):
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        return self.put(None)
