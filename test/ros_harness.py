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
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSCompatibility, QoSProfile, ReliabilityPolicy, qos_check_compatible

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

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 15.0) -> None:
        self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout,
                        f"{count} subscriber(s) on {publisher.topic_name}")

    def wait_for_node_outputs(self, node: str = "/da3/da3_node", topics: Optional[Iterable[str]] = None,
                              timeout: float = 60.0, check: Optional[Callable[[], None]] = None) -> None:
        """Wait until the node ``node`` (fully qualified name) has matched this test's subscription on each of
        ``topics`` (default: every topic subscribed through ``subscribe`` so far); call it after the last
        ``subscribe`` and before the first frame goes out.

        da3_node builds an output only while its publisher has a matched subscriber, and DDS delivers a
        message only to the readers its writer has matched: the condition that matters is on the node's
        side, which no rclpy call of another process can read. "Matched" is therefore decided in two steps:

        1. per topic, from this process: the node has a publisher on the topic in the ROS graph
           (``get_publishers_info_by_topic``, by node name and namespace: ``count_publishers`` would also
           count the world's /tf publisher), and each of this test's subscriptions on it has matched every
           QoS-compatible publisher of the graph (``Subscription.get_publisher_count()``, the reader's matched
           writers; rclpy 9). This is the reader side only: it proves that this process discovered the node's
           writer, not that the node discovered this reader.
        2. the node's side, for all topics at once: a ``/diagnostics`` subscription created now, after every
           subscription of this test, receives a DiagnosticArray of the node (``hardware_id`` = ``node``).
           The node's /diagnostics writer can only have sent it after matching this newest reader, and a
           participant announces its readers on one reliable, in-order discovery stream (DDS SEDP): so the
           node had taken in every older reader of this test, and its output writers (created before its
           diagnostics publisher, in on_configure) had matched them.

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
        namespace, _, name = node.rpartition("/")
        namespace = namespace or "/"
        topics = sorted(self.subscriptions if topics is None else set(topics))
        missing = [t for t in topics if t not in self.subscriptions]
        if missing:
            raise ValueError(f"wait_for_node_outputs: {missing} not subscribed through RosTestNode.subscribe")
        end = time.monotonic() + timeout
        problems: dict[str, str] = {}

        def unmatched() -> dict[str, str]:
            if check is not None:
                check()
            out = {}
            for topic in topics:
                infos = self.node.get_publishers_info_by_topic(topic)
                if not any(i.node_name == name and i.node_namespace == namespace for i in infos):
                    out[topic] = f"{node} has no publisher on it"
                    continue
                for sub in self.subscriptions[topic]:
                    compatible = sum(qos_check_compatible(i.qos_profile, sub.qos_profile)[0]
                                     != QoSCompatibility.ERROR for i in infos)
                    if sub.get_publisher_count() < compatible:
                        out[topic] = (f"this test's subscription matched {sub.get_publisher_count()} of the "
                                      f"{compatible} QoS-compatible publishers")
            return out

        while time.monotonic() < end:
            problems = unmatched()
            if not problems:
                break
            self.spin_once(0.02)
        if problems:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {node} to match this test's "
                               f"subscriptions; never matched: "
                               + "; ".join(f"{t} ({why})" for t, why in sorted(problems.items())))
        confirmed = []
        canary = self.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda m: confirmed.extend(s for s in m.status if s.hardware_id == node), RELIABLE)
        try:
            while not confirmed and time.monotonic() < end:
                if check is not None:
                    check()
                self.spin_once(0.02)
        finally:
            self.node.destroy_subscription(canary)
        if not confirmed:
            raise TimeoutError(
                f"timed out after {timeout:.1f} s waiting for {node} to match this test's subscriptions: every "
                f"one of {topics} matched on this side, but no /diagnostics message of {node} reached a "
                "subscription created after them (the node has not confirmed that it sees them)")


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
