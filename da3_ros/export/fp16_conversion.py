"""Mixed-precision fp16 ONNX graph (``--precision fp16``), for strongly typed TensorRT builds.

TensorRT-RTX only builds strongly typed networks: an engine runs in the precision the ONNX graph's
tensors have, so an fp16 engine needs an fp16 graph. This converts the fp32 export's weights and
activations to float16 except for the operations that overflow or lose too much in fp16 -- the
same ones the TensorRT 10 builder pins to FP32 (LayerNorm, softmax, ``exp``, reductions, pow/sqrt,
erf) -- plus ONNX Runtime's default block list (ops without fp16 kernels such as ``Range``), and
outside the backbone and depth head (:func:`is_fp16_region`). Graph
inputs (uint8 images, fp32 pose encoding) and outputs (fp32) keep their types, so the sidecar's I/O
contract is unchanged.
"""
from __future__ import annotations

FP16_PRECISION = "fp16"
#: Kept in fp32 inside an fp16 graph (see the module docstring).
FP32_OPS = ("LayerNormalization", "Softmax", "Exp", "Log", "Pow", "Sqrt", "Erf", "ReduceMean", "ReduceSum",
            "ReduceMax", "ReduceL2", "ArgMin", "ArgMax")


def is_fp16_region(node_name: str) -> bool:
    """The heavy part of the network runs in fp16: the backbone and the depth head. The camera
    encoder/decoder, the pose -> extrinsics/intrinsics conversion (focal lengths ~1e3-1e4 whose
    intermediate squares overflow fp16's 65504) and the input normalisation stay fp32."""
    if "/cam_dec/" in node_name or "/cam_enc/" in node_name:
        return False
    return "/backbone/" in node_name or "/head/" in node_name


def convert_to_fp16(model):
    """Return the mixed-precision fp16 version of ``model`` (an fp32 ``onnx.ModelProto``)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP32_OPS))
    fp32_nodes = [node.name for node in model.graph.node if not is_fp16_region(node.name)]
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=block,
                                         node_block_list=fp32_nodes)
    remove_fp16_round_trips(converted)
    return converted


def remove_fp16_round_trips(model) -> int:
    """The converter casts every fp32 node's output to fp16 and back to fp32 for the next fp32
    node, so values between two fp32 nodes (e.g. focal lengths > 65504) still pass through fp16.
    Each ``Cast(to=fp32)(Cast(to=fp16)(x))`` with fp32 ``x`` becomes ``Identity(x)``; returns how
    many. The fp16 cast is dropped when nothing else reads it."""
    from onnx import TensorProto, helper

    from da3_ros.export.graph_edit import attribute, remove_dead_nodes

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    elem_type = {info.name: info.type.tensor_type.elem_type
                 for info in list(graph.value_info) + list(graph.input) + list(graph.output)}

    def cast_to(node):
        return attribute(node, "to") if node.op_type == "Cast" else None

    replaced = 0
    for index, node in enumerate(graph.node):
        if cast_to(node) != TensorProto.FLOAT:
            continue
        first = producer.get(node.input[0])
        if first is None or cast_to(first) != TensorProto.FLOAT16:
            continue
        source = first.input[0]
        source_type = elem_type.get(source)
        if source_type is None and source in producer and cast_to(producer[source]) == TensorProto.FLOAT:
            source_type = TensorProto.FLOAT
        if source_type != TensorProto.FLOAT:
            continue
        graph.node[index].CopyFrom(helper.make_node("Identity", [source], list(node.output), name=node.name))
        replaced += 1
    remove_dead_nodes(graph)
    return replaced
