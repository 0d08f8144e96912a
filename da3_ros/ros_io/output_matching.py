"""Wait until a node's publishers have matched this process's subscriptions (before sending it a first frame).

da3_node builds an output only while its publisher has a matched subscriber, and DDS delivers a message only to
the readers its writer has matched: a recorder (the demo, a test, an integration check) that sends the first
frame before the node matched its subscriptions silently loses that frame's outputs. The condition that matters
is on the node's side, which no rclpy call of another process can read, so "matched" is decided in two steps
(:func:`wait_for_matched_outputs`):

1. per topic, from this process: the node has a publisher on the topic in the ROS graph
   (``get_publishers_info_by_topic``, by node name and namespace: ``count_publishers`` would also count another
   process's /tf publisher), and each of this process's subscriptions on it has matched every QoS-compatible
   publisher of the graph (``Subscription.get_publisher_count()``, the reader's matched writers). This proves
   that this process discovered the node's writer, not that the node discovered this reader;
2. the node's side, for all topics at once: a ``/diagnostics`` subscription created now, after every
   subscription checked, receives a DiagnosticArray of the node (``hardware_id`` = the node's name). The node's
   /diagnostics writer can only have sent it after matching this newest reader, and a participant announces its
   readers on one reliable, in-order discovery stream (DDS SEDP): so the node had taken in every older reader,
   and its output writers (created before its diagnostics publisher, at configure) had matched them.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Mapping, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSCompatibility, QoSProfile, ReliabilityPolicy, qos_check_compatible

__all__ = ["unmatched_outputs", "wait_for_matched_outputs"]

_DIAGNOSTICS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def unmatched_outputs(node, subscriptions: Mapping[str, Sequence], publisher_node: str) -> Dict[str, str]:
    """Topic -> why it is not matched yet (step 1 of the module docstring), for ``subscriptions`` (topic -> this
    process's rclpy Subscriptions on it) and the publishing node's fully qualified name ``publisher_node``."""
    namespace, _, name = publisher_node.rpartition("/")
    namespace = namespace or "/"
    out = {}
    for topic, subs in subscriptions.items():
        infos = node.get_publishers_info_by_topic(topic)
        if not any(i.node_name == name and i.node_namespace == namespace for i in infos):
            out[topic] = f"{publisher_node} has no publisher on it"
            continue
        for sub in subs:
            compatible = sum(qos_check_compatible(i.qos_profile, sub.qos_profile)[0] != QoSCompatibility.ERROR
                             for i in infos)
            if sub.get_publisher_count() < compatible:
                out[topic] = (f"this process's subscription matched {sub.get_publisher_count()} of the "
                              f"{compatible} QoS-compatible publishers")
    return out


def wait_for_matched_outputs(node, subscriptions: Mapping[str, Sequence], publisher_node: str,
                             spin_once: Callable[[float], None], timeout: float = 60.0,
                             check: Optional[Callable[[], None]] = None) -> None:
    """Both steps of the module docstring; ``spin_once(seconds)`` spins this process's executor, ``check`` is
    called at every poll (e.g. fails when the node's process died). Raises ``TimeoutError`` naming every topic
    that never matched (and why), or that the node never confirmed with a diagnostics message."""
    end = time.monotonic() + timeout
    problems: Dict[str, str] = {}
    while time.monotonic() < end:
        if check is not None:
            check()
        problems = unmatched_outputs(node, subscriptions, publisher_node)
        if not problems:
            break
        spin_once(0.02)
    if problems:
        raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {publisher_node} to match this process's "
                           "subscriptions; never matched: "
                           + "; ".join(f"{t} ({why})" for t, why in sorted(problems.items())))
    confirmed = []
    canary = node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: confirmed.extend(s for s in m.status if s.hardware_id == publisher_node), _DIAGNOSTICS_QOS)
    try:
        while not confirmed and time.monotonic() < end:
            if check is not None:
                check()
            spin_once(0.02)
    finally:
        node.destroy_subscription(canary)
    if not confirmed:
        raise TimeoutError(
            f"timed out after {timeout:.1f} s waiting for {publisher_node} to match this process's subscriptions: "
            f"every one of {sorted(subscriptions)} matched on this side, but no /diagnostics message of "
            f"{publisher_node} reached a subscription created after them (the node has not confirmed that it "
            "sees them)")
