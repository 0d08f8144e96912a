"""Harness for tests over real DDS: an in-process rclpy node plus managed subprocesses.

- ``RosTestNode``: its own rclpy Context + SingleThreadedExecutor; ``spin_until(predicate)``,
  ``wait_for_topics``, ``subscribe`` (records every message), ``publisher``.
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

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class RosTestNode:
    def __init__(self, name: str):
        self.name = name
        self.context = Context()
        self.node = None
        self.executor = None
        self.received: dict[str, list] = {}

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
        self.node.create_subscription(msg_type, topic, store.append, qos)
        return store

    def publisher(self, topic: str, msg_type, qos: QoSProfile = RELIABLE):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 15.0) -> None:
        self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout,
                        f"{count} subscriber(s) on {publisher.topic_name}")


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
