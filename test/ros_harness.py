"""Harness for tests over real DDS: an in-process rclpy node plus managed subprocesses.

- ``RosTestNode``: its own rclpy Context + SingleThreadedExecutor; ``spin_until(predicate)``,
  ``wait_for_topics``, ``subscribe`` (records every message), ``publisher``, and ``wait_for_node_outputs``:
  before the first frame, until a node (da3_node) has matched every output subscription of the test (the
  node builds an output only for a matched subscriber, so an unmatched one silently misses the first frames).
- ``ProcessLauncher``: starts a command with the test environment (the DDS isolation variables of
  conftest.py are inherited), logs to a file, and stops it at teardown; ``log()`` returns the output
  for assertion messages.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from da3_ros.ros_io.output_matching import wait_for_matched_outputs

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class RosTestNode:
    def __init__(self, name: str):
        self.name = name
        self.context = Context()
        self.node = None
        self.executor = None
        self.received: dict[str, list] = {}
        self.subscriptions: dict[str, list] = {}   # topic -> the rclpy Subscriptions of ``subscribe``

    def __enter__(self) -> "RosTestNode":
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(self.name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def spin_once(self, timeout: float = 0.05) -> None:
        self.executor.spin_once(timeout_sec=timeout)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.spin_once(0.02)

    def spin_until(self, predicate, timeout: float, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            self.spin_once(0.02)
        if not predicate():
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")

    def topic_types(self) -> dict[str, list[str]]:
        return dict(self.node.get_topic_names_and_types())

    def wait_for_topics(self, topics: dict[str, str], timeout: float = 15.0) -> None:
        """Wait until every ``{name: 'pkg/msg/Type'}`` is advertised by someone."""
        def ready():
            known = self.topic_types()
            return all(t in known.get(n, []) for n, t in topics.items())
        self.spin_until(ready, timeout, f"topics {sorted(topics)}")

    def subscribe(self, topic: str, msg_type, qos: QoSProfile = RELIABLE) -> list:
        store = self.received.setdefault(topic, [])
        sub = self.node.create_subscription(msg_type, topic, store.append, qos)
        self.subscriptions.setdefault(sub.topic_name, []).append(sub)
        return store

    def publisher(self, topic: str, msg_type, qos: QoSProfile = RELIABLE):
        return self.node.create_publisher(msg_type, topic, qos)

    def relay(self, source: str, target: str, msg_type, qos: QoSProfile = RELIABLE):
        """Republish every ``source`` message this process takes in on ``target``; returns the publisher.

        A world process paces on ``target`` (it sends the next frame once the node's answer to the last one has
        reached this test), so a starved test process slows the world down instead of falling behind the node's
        publishers: a RELIABLE KEEP_LAST writer drops what a reader has not taken once its history is full."""
        pub = self.node.create_publisher(msg_type, target, qos)
        sub = self.node.create_subscription(msg_type, source, pub.publish, qos)
        self.subscriptions.setdefault(sub.topic_name, []).append(sub)
        return pub

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 15.0) -> None:
        self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout,
                        f"{count} subscriber(s) on {publisher.topic_name}")

    def wait_for_node_outputs(self, node: str = "/da3/da3_node", topics: Optional[Iterable[str]] = None,
                              timeout: float = 60.0, check: Optional[Callable[[], None]] = None) -> None:
        """Wait until the node ``node`` (fully qualified name) has matched this test's subscription on each of
        ``topics`` (default: every topic subscribed through ``subscribe`` so far); call it after the last
        ``subscribe`` and before the first frame goes out.

        "Matched" is decided as ``da3_ros.ros_io.output_matching`` says (its module docstring): the node's
        publisher on each topic is seen and each of this test's subscriptions matched it, then a /diagnostics
        message of the node reaches a subscription created after them (the node's side).

        Args:
            node: the node's fully qualified name, e.g. ``/da3/da3_node``.
            topics: the output topics to check (fully qualified, as subscribed); default: every topic
                subscribed through ``subscribe``.
            timeout: seconds for both steps together.
            check: called at every poll (e.g. asserts that the node process is alive, with its log).

        Raises:
            TimeoutError: naming every topic that never matched (and why), or that the node never
                confirmed with a diagnostics message.
        """
        topics = sorted(self.subscriptions if topics is None else set(topics))
        missing = [t for t in topics if t not in self.subscriptions]
        if missing:
            raise ValueError(f"wait_for_node_outputs: {missing} not subscribed through RosTestNode.subscribe")
        wait_for_matched_outputs(self.node, {t: self.subscriptions[t] for t in topics}, node, self.spin_once,
                                 timeout=timeout, check=check)


class ProcessLauncher:
    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, args: list[str], name: str = "proc", env: dict | None = None) -> subprocess.Popen:
        log_path = self.log_dir / f"{name}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        log = open(log_path, "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
        log.close()
        self.procs.append((proc, log_path))
        return proc

    def start_python(self, script_args: list[str], name: str = "proc", env: dict | None = None):
        return self.start([sys.executable, *script_args], name=name, env=env)

    def log(self, proc: subprocess.Popen) -> str:
        for p, path in self.procs:
            if p is proc:
                return path.read_text(errors="replace")
        return ""

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> int:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            self.stop(proc)
