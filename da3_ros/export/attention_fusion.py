"""Rewrite the exported attention into ONNX Runtime's fused ``com.microsoft.MultiHeadAttention``.

The legacy exporter lowers ``F.scaled_dot_product_attention`` to::

    q' = Mul(q, sqrt(scale)); k' = Mul(Transpose(k, [0,1,3,2]), sqrt(scale))
    out = Reshape(Transpose(MatMul(Softmax(MatMul(q', k')), v), [0,2,1,3]), [B, S, N*H])

with ``q, k, v`` in (B, N heads, S, H) layout. Run as is, ONNX Runtime materialises the (B, N, S, S)
score matrix (646 MB per global layer of DA3-Small at N=4, 504x504) and streams it through memory
three times. ``MultiHeadAttention`` computes the same thing tile by tile (flash attention on the CPU
EP), so each matched block becomes::

    out = MultiHeadAttention(Reshape(Transpose(q)), Reshape(Transpose(k)), Reshape(Transpose(v)),
                             num_heads=N, scale=1/sqrt(H))

This is an ONNX Runtime contrib op: the rewritten graph is for ONNX Runtime only (TensorRT cannot
parse it). The exported ``.onnx`` file therefore stays portable and the ONNX Runtime backend applies
this rewrite in memory when it loads a graph (see ``OnnxRuntimeBackend(fused_attention=...)``).

Only the exact pattern above, with static shapes and SDPA's symmetric scale split (the two ``Sqrt``
factors come from one tensor: a constant is read, a run-time value computed from shapes is SDPA's
default ``1/sqrt(H)``), is rewritten; anything else is left alone and counted in
:class:`FusionReport`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from da3_ros.export.graph_edit import attribute, remove_dead_nodes

CONTRIB_DOMAIN = "com.microsoft"


@dataclass
class FusionReport:
    fused: int = 0  #: attention blocks rewritten
    softmax_total: int = 0  #: Softmax nodes seen (fused + left alone)
    skipped: List[str] = field(default_factory=list)  #: "<softmax name>: <reason>" for each left alone

    def describe(self) -> str:
        text = f"{self.fused} of {self.softmax_total} softmax attention blocks fused into MultiHeadAttention"
        if self.skipped:
            text += f" (left alone: {'; '.join(self.skipped[:3])}{' ...' if len(self.skipped) > 3 else ''})"
        return text


def _static_shapes(model) -> Dict[str, List[int]]:
    """Tensor name -> static shape, from ONNX shape inference (weights need not be loaded)."""
    import onnx

    # infer_shapes works on a full copy of the model: hand it the graph without its weight bytes
    # (only their dims matter), so a 100 MB+ model is not duplicated in memory.
    stashed = {}
    for index, init in enumerate(model.graph.initializer):
        if len(init.raw_data) > 4096:
            stashed[index] = init.raw_data
            init.ClearField("raw_data")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    finally:
        for index, data in stashed.items():
            model.graph.initializer[index].raw_data = data
    shapes: Dict[str, List[int]] = {}
    graph = inferred.graph
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


class _Graph:
    def __init__(self, graph) -> None:
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: Dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def made_by(self, name: str, op_type: str):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_consumer(self, name: str, op_type: str):
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None


def _match(g: _Graph, softmax, shapes: Dict[str, List[int]]):
    """Return (q, k, v, output_reshape, nodes_to_remove, heads, head_dim) or a reason string."""
    if attribute(softmax, "axis", -1) not in (-1, 3):
        return "softmax axis is not the last"
    scores = g.made_by(softmax.input[0], "MatMul")
    if scores is None:
        return "softmax input is not a MatMul"
    q_scaled, k_scaled = g.made_by(scores.input[0], "Mul"), g.made_by(scores.input[1], "Mul")
    if q_scaled is None or k_scaled is None:
        return "scores are not MatMul(Mul(q), Mul(k^T))"
    k_transposed = g.made_by(k_scaled.input[0], "Transpose")
    if k_transposed is None or attribute(k_transposed, "perm") != [0, 1, 3, 2]:
        return "key is not transposed [0,1,3,2]"
    sqrt_q, sqrt_k = g.made_by(q_scaled.input[1], "Sqrt"), g.made_by(k_scaled.input[1], "Sqrt")
    if sqrt_q is None or sqrt_k is None or sqrt_q.input[0] != sqrt_k.input[0]:
        return "scale is not SDPA's symmetric sqrt split"
    weighted = g.only_consumer(softmax.output[0], "MatMul")
    if weighted is None or weighted.input[0] != softmax.output[0]:
        return "softmax output does not feed one MatMul"
    to_bsnh = g.only_consumer(weighted.output[0], "Transpose")
    if to_bsnh is None or attribute(to_bsnh, "perm") != [0, 2, 1, 3]:
        return "attention output is not transposed [0,2,1,3]"
    merge = g.only_consumer(to_bsnh.output[0], "Reshape")
    if merge is None:
        return "attention output is not reshaped"
    q, k, v = q_scaled.input[0], k_transposed.input[0], weighted.input[1]
    shape = shapes.get(q)
    if shape is None or len(shape) != 4:
        return "query shape is not static 4-D"
    batch, heads, seq, head_dim = shape
    if shapes.get(k) != shape or shapes.get(v) != shape:
        return "q, k, v shapes differ (cross attention is not rewritten)"
    if shapes.get(merge.output[0]) != [batch, seq, heads * head_dim]:
        return "merged output is not (B, S, N*H)"
    return q, k, v, merge, [softmax, scores, weighted, to_bsnh, merge], heads, head_dim, (batch, seq), sqrt_q.input[0]


def _constant_scalar(graph, g: _Graph, name: str) -> Optional[float]:
    """Value of a scalar Constant node / initializer ``name``, else None."""
    from onnx import numpy_helper

    node = g.made_by(name, "Constant")
    if node is not None:
        tensor = attribute(node, "value")
    else:
        tensor = next((t for t in graph.initializer if t.name == name), None)
    if tensor is None:
        return None
    value = numpy_helper.to_array(tensor)
    return float(value.reshape(-1)[0]) if value.size == 1 else None


def fuse_attention(model) -> FusionReport:
    """Rewrite every matched attention block of ``model`` (an ``onnx.ModelProto``, modified in place;
    its weights may stay in external data) into ``com.microsoft.MultiHeadAttention``."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    report = FusionReport()
    softmaxes = [node for node in graph.node if node.op_type == "Softmax"]
    report.softmax_total = len(softmaxes)
    if not softmaxes:
        return report
    shapes = _static_shapes(model)
    g = _Graph(graph)
    replacements: Dict[int, list] = {}  # id(node to replace) -> new nodes
    removed: set = set()
    for index, softmax in enumerate(softmaxes):
        match = _match(g, softmax, shapes)
        if isinstance(match, str):
            report.skipped.append(f"{softmax.name or index}: {match}")
            continue
        q, k, v, merge, nodes, heads, head_dim, (batch, seq), scale_name = match
        scale = _constant_scalar(graph, g, scale_name)
        if scale is None:  # computed from shapes at run time by the exporter: SDPA's default
            scale = 1.0 / math.sqrt(head_dim)
        prefix = f"/da3_fused_attention_{report.fused}"
        shape_name = f"{prefix}/bsd_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([batch, seq, heads * head_dim], np.int64),
                                                         shape_name))
        new_nodes, packed = [], []
        for tag, name in (("query", q), ("key", k), ("value", v)):
            new_nodes.append(helper.make_node("Transpose", [name], [f"{prefix}/{tag}_bsnh"], perm=[0, 2, 1, 3],
                                              name=f"{prefix}/{tag}_to_bsnh"))
            new_nodes.append(helper.make_node("Reshape", [f"{prefix}/{tag}_bsnh", shape_name],
                                              [f"{prefix}/{tag}_bsd"], name=f"{prefix}/{tag}_to_bsd"))
            packed.append(f"{prefix}/{tag}_bsd")
        new_nodes.append(helper.make_node("MultiHeadAttention", packed, [merge.output[0]], domain=CONTRIB_DOMAIN,
                                          name=f"{prefix}/MultiHeadAttention", num_heads=int(heads),
                                          scale=float(scale)))
        replacements[id(merge)] = new_nodes
        removed.update(id(node) for node in nodes)
        report.fused += 1
    if not report.fused:
        return report
    rebuilt = []
    for node in graph.node:
        if id(node) in replacements:
            rebuilt.extend(replacements[id(node)])
        elif id(node) not in removed:
            rebuilt.append(node)
    del graph.node[:]
    graph.node.extend(rebuilt)
    remove_dead_nodes(graph)
    if not any(op.domain == CONTRIB_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    return report
