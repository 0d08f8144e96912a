"""Small ONNX graph-editing helpers shared by the graph rewrites (attention fusion, fp16 conversion)."""
from __future__ import annotations

from typing import Any


def attribute(node, name: str, default: Any = None) -> Any:
    """Value of ``node``'s attribute ``name`` (repeated ints -> list), or ``default``."""
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def remove_dead_nodes(graph) -> None:
    """Drop nodes none of whose outputs is consumed or a graph output (repeatedly)."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if not any(out in used for out in node.output)]
        if not dead:
            return
        dead_ids = {id(node) for node in dead}
        keep = [node for node in graph.node if id(node) not in dead_ids]
        del graph.node[:]
        graph.node.extend(keep)
