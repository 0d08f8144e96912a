"""``ServiceThread``: a node's slow service served on a thread of its own, outside the node's executor.

A service whose work takes long (``~/save_map`` writes a whole map) must not hold up the node's executor: its
timers (the future-dated TF edges, whose lead is only ``transform_tolerance_s``), subscriptions and lifecycle
services. rclpy's ``MultiThreadedExecutor`` would run it beside them, but it spins busily whenever a callback of
a mutually exclusive group is running (measured: the correction-mode TF client test dropped from 78/78 to 73/78
lookups at "now", 60 -> 46 processed frames), so the node keeps its ``SingleThreadedExecutor`` and a slow service
lives on a helper node (same context and namespace, ``<node>_services``, process-wide remaps ignored so that a
``__node:=`` cannot give it the main node's name) spun by its own single-threaded executor in a daemon thread.
The service keeps the main node's resolved name (``~/save_map`` -> ``/<ns>/<node>/save_map``, remaps included).
"""
from __future__ import annotations

import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

__all__ = ["ServiceThread"]


class ServiceThread:
    """Serve ``srv_type`` at ``owner``'s resolved ``name`` with ``callback(request, response)`` on a thread of its
    own (module docstring); :meth:`close` stops it."""

    def __init__(self, owner: Node, srv_type, name: str, callback: Callable):
        self.name = owner.resolve_service_name(name)
        self._node = rclpy.create_node(f"{owner.get_name()}_services", namespace=owner.get_namespace(),
                                       context=owner.context, use_global_arguments=False,
                                       start_parameter_services=False)
        self._service = self._node.create_service(srv_type, self.name, callback)
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name=f"service {self.name}", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def close(self) -> None:
        """Stop serving (waits for a request in progress); idempotent."""
        if self._node is None:
            return
        self._executor.shutdown(timeout_sec=30.0)
        self._thread.join(timeout=30.0)
        self._node.destroy_node()
        self._node = None
