"""Dynamic int8 quantisation of an exported DA3 graph for ONNX Runtime on CPUs (``int8_dynamic``).

Only the weight matrices of the backbone's transformer blocks (qkv, proj, fc1, fc2: about 40 % of
the FLOPs, see notes/export.md) are quantised: int8 per output channel, with each activation
quantised per tensor at run time (``DynamicQuantizeLinear`` -> ``MatMulInteger``; AVX-512 VNNI/AVX2
kernels). The attention products, the camera decoder, the DPT head and all normalisations stay
fp32, so the camera token and the depth head see full-precision arithmetic; the attention still
gets fused at load (da3_ros.export.attention_fusion).

The accuracy cost depends on the real weights' activation ranges, which random test weights do not
reproduce: check every int8 export against its checkpoint with ``da3-export check``. TensorRT cannot
build these graphs (they are refused with the fp32 export command).
"""
from __future__ import annotations

import os
from typing import Dict, List

INT8_PRECISION = "int8_dynamic"


def backbone_matmuls(model) -> List[str]:
    """Names of the MatMul/Gemm nodes of the backbone's transformer blocks whose second input is a
    weight (an initializer); attention products (two activations) are not included."""
    weights = {init.name for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in ("MatMul", "Gemm") and "/backbone/" in node.name and "/blocks." in node.name
            and len(node.input) > 1 and node.input[1] in weights]


def quantize_int8_dynamic(src: os.PathLike | str, dst: os.PathLike | str, *,
                          external_data: bool = False) -> Dict[str, object]:
    """``src`` (fp32 export) -> ``dst`` with the backbone block weights in int8. Returns
    ``{"quantized_matmuls": n, "quantizer": "onnxruntime <version>"}``."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = backbone_matmuls(onnx.load(str(src), load_external_data=False))
    if not nodes:
        raise ValueError(f"{src}: no backbone transformer-block MatMul with a weight found; nothing to quantise")
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_quantize=nodes, use_external_data_format=external_data,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"quantized_matmuls": len(nodes), "quantizer": f"onnxruntime {onnxruntime.__version__}"}
