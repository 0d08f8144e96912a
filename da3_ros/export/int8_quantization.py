"""Dynamic int8 quantisation of an exported DA3 graph for ONNX Runtime on CPUs (``int8_dynamic``).

Only the weight matrices of the backbone's transformer blocks (qkv, proj, fc1, fc2: about 40 % of
the FLOPs, see notes/export.md) are quantised: int8 per output channel, with each activation
quantised to uint8 per tensor at run time (``DynamicQuantizeLinear`` -> ``MatMulInteger``). The
attention products, the camera decoder, the DPT head and all normalisations stay fp32, so the camera
token and the depth head see full-precision arithmetic; the attention still gets fused at load
(da3_ros.export.attention_fusion).

Scheme (:data:`INT8_SCHEME`, recorded in the sidecar as ``extra["int8_scheme"]``): uint8
activations x int8 weights in the *reduced range* [-64, 64] (7 bits). ONNX Runtime's x86 kernels for
uint8 x int8 on CPUs without VNNI (AVX2, AVX-512 before Cascade Lake) multiply with ``VPMADDUBSW``,
which adds two u8*s8 products into a *saturating* int16: with full-range weights (+-127) the pair can
reach 2*255*127 = 64770 > 32767 and the sums clip (measured under an emulated Haswell: extrinsics
0.14-0.48 max rel off on the reduced test model). With weights within +-64 the pair stays at most
2*255*64 = 32640, so the integer products are exact on every x86 CPU, VNNI/AMX or not, and the graph
gives the same numbers everywhere, at the speed of the full-range graph (notes/export.md). uint8
weights (U8U8, also exact) ran no faster than fp32 here, so they are not used.

Graphs written before the scheme was recorded (:data:`LEGACY_INT8_SCHEME`, full-range int8 weights)
are refused by the ONNX Runtime backend on hosts where :func:`ort_u8s8_saturates` (a measurement of
this ONNX Runtime's kernels, not a guess from CPU flags): :func:`int8_host_problem`.

The accuracy cost depends on the real weights' activation ranges, which random test weights do not
reproduce: check every int8 export against its checkpoint with ``da3-export check``. TensorRT cannot
build these graphs (they are refused with the fp32 export command).
"""
from __future__ import annotations

import functools
import os
from typing import Dict, List, Optional

INT8_PRECISION = "int8_dynamic"
#: uint8 activations (dynamic, per tensor) x int8 weights in [-64, 64] (per output channel): exact
#: integer products on every x86 CPU (no VPMADDUBSW int16 saturation).
INT8_SCHEME = "u8s8_reduced_range"
#: Full-range int8 weights (+-127): what ``int8_dynamic`` exports wrote before ``int8_scheme`` was
#: recorded. Saturates on x86 CPUs without VNNI.
LEGACY_INT8_SCHEME = "u8s8"
#: Largest |weight| of :data:`INT8_SCHEME` (ONNX Runtime's reduce_range for int8).
REDUCED_RANGE_MAX = 64


def backbone_matmuls(model) -> List[str]:
    """Names of the MatMul/Gemm nodes of the backbone's transformer blocks whose second input is a
    weight (an initializer); attention products (two activations) are not included."""
    weights = {init.name for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in ("MatMul", "Gemm") and "/backbone/" in node.name and "/blocks." in node.name
            and len(node.input) > 1 and node.input[1] in weights]


def quantize_int8_dynamic(src: os.PathLike | str, dst: os.PathLike | str, *,
                          external_data: bool = False) -> Dict[str, object]:
    """``src`` (fp32 export) -> ``dst`` with the backbone block weights in int8 (:data:`INT8_SCHEME`).
    Returns ``{"quantized_matmuls": n, "int8_scheme": INT8_SCHEME, "quantizer": "onnxruntime <version>"}``
    (merged into the sidecar's ``extra``)."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = backbone_matmuls(onnx.load(str(src), load_external_data=False))
    if not nodes:
        raise ValueError(f"{src}: no backbone transformer-block MatMul with a weight found; nothing to quantise")
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     nodes_to_quantize=nodes, use_external_data_format=external_data,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"quantized_matmuls": len(nodes), "int8_scheme": INT8_SCHEME,
            "quantizer": f"onnxruntime {onnxruntime.__version__}"}


def ort_u8s8_products_exact(weight: int, *, depth: int = 64) -> bool:
    """Whether ONNX Runtime's CPU ``MatMulInteger`` on this host computes uint8 255 x int8 ``weight``
    summed over ``depth`` exactly (a constant weight matrix, as in the quantised graphs: the packed
    GEMM path). Measured with a (16 x depth) @ (depth x 16) product; takes milliseconds."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, n = 16, 16
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "u8s8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, depth])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        initializer=[numpy_helper.from_array(np.full((depth, n), weight, np.int8), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    y = session.run(None, {"a": np.full((m, depth), 255, np.uint8)})[0]
    return bool((y.astype(np.int64) == 255 * weight * depth).all())


@functools.lru_cache(maxsize=None)
def ort_u8s8_saturates() -> bool:
    """True when this host's ONNX Runtime saturates uint8 x full-range int8 products (x86 without
    VNNI: ``VPMADDUBSW`` int16 pair sums). Measured once per process."""
    return not ort_u8s8_products_exact(127)


def int8_scheme(sidecar) -> Optional[str]:
    """The int8 scheme of a graph from its sidecar: None for graphs that are not ``int8_dynamic``,
    :data:`LEGACY_INT8_SCHEME` for int8 graphs from before the scheme was recorded."""
    if sidecar.precision != INT8_PRECISION:
        return None
    return str(sidecar.extra.get("int8_scheme", LEGACY_INT8_SCHEME))


def int8_host_problem(sidecar) -> Optional[str]:
    """Why the graph described by ``sidecar`` would run inaccurately with ONNX Runtime on this host,
    or None (not int8, a host-independent scheme, or a host whose kernels do not saturate)."""
    scheme = int8_scheme(sidecar)
    if scheme is None or scheme == INT8_SCHEME:
        return None
    if scheme != LEGACY_INT8_SCHEME:
        return f"unknown int8 scheme {scheme!r} (this version knows {INT8_SCHEME!r} and {LEGACY_INT8_SCHEME!r})"
    if not ort_u8s8_saturates():
        return None
    return (f"int8 scheme {scheme!r} (full-range int8 weights) saturates in ONNX Runtime's int8 kernels on this "
            f"CPU (no VNNI: measured uint8 x int8 products clip at int16), which puts extrinsics ~0.1-0.5 "
            f"off; re-export it with this version (scheme {INT8_SCHEME!r}, exact on every x86 CPU)")
