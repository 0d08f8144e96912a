"""Static-graph checks of an exported ONNX graph (DA3_MODEL_SPEC.md section 9): TensorRT needs
fully static shapes, so a graph must contain no op with a data-dependent output shape
(:data:`DATA_DEPENDENT_SHAPE_OPS`), no shape-setting input computed from input *values*
(:func:`value_dependent_shape_nodes`) and only static input/output dims (:func:`graph_problems`).
"""
from __future__ import annotations

from typing import Dict, List

#: ONNX ops whose output shape depends on input *values* (forbidden: TensorRT needs static shapes).
DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "Unique", "Compress", "NonMaxSuppression", "Loop", "Scan",
                                      "If", "SequenceConstruct", "SplitToSequence", "StringSplit"})

#: For ops whose output *shape* is set by some input *values*: op type -> indices of those inputs.
SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2), "ConstantOfShape": (0,),
                "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Upsample": (1,), "Pad": (1,), "TopK": (1,),
                "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "ReduceSum": (1,),
                "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "CenterCropPad": (1,)}


def value_dependent_shape_nodes(model_proto) -> List[str]:
    """Nodes whose output shape depends on the *values* of a graph input (not only its shape).

    Walks back from every shape-setting input (:data:`SHAPE_INPUTS`) to its sources: initializers,
    ``Constant`` nodes and ``Shape``/``Size`` of anything are static (input shapes are fixed);
    reaching a graph input any other way makes the shape data-dependent.
    """
    graph = model_proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    graph_inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
    memo: Dict[str, bool] = {}

    def depends_on_values(name: str) -> bool:
        stack, order = [name], []
        while stack:  # iterative DFS (graphs are deep), then resolve in reverse post-order
            cur = stack.pop()
            if cur in memo or cur == "":
                continue
            node = producer.get(cur)
            if node is None or node.op_type in ("Shape", "Size", "Constant"):
                memo[cur] = cur in graph_inputs
                continue
            pending = [i for i in node.input if i and i not in memo]
            if pending:
                stack.append(cur)
                stack.extend(pending)
                order.append(cur)
                if len(order) > 10 * len(producer) + 100:
                    raise RuntimeError("graph walk did not terminate (cycle?)")
                continue
            memo[cur] = any(memo.get(i, False) for i in node.input if i)
        return memo[name]

    bad = []
    for node in graph.node:
        for idx in SHAPE_INPUTS.get(node.op_type, ()):
            if idx < len(node.input) and node.input[idx] and depends_on_values(node.input[idx]):
                bad.append(f"{node.op_type} {node.name}")
                break
    return bad


def graph_problems(model_proto) -> List[str]:
    """Reasons why a graph is not static: ops with data-dependent output shapes, shape-setting
    inputs computed from input values, or non-static input/output dims. Empty list = static."""
    problems = []
    ops = {n.op_type for n in model_proto.graph.node}
    bad = sorted(ops & DATA_DEPENDENT_SHAPE_OPS)
    if bad:
        problems.append(f"data-dependent-shape ops {bad}")
    value_dependent = value_dependent_shape_nodes(model_proto)
    if value_dependent:
        problems.append(f"shapes computed from input values at {value_dependent[:5]}")
    for vi in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            problems.append(f"tensor {vi.name} has a non-static shape")
    return problems


def op_histogram(model_proto) -> Dict[str, int]:
    hist: Dict[str, int] = {}
    for n in model_proto.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))
