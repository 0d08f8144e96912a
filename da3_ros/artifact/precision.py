"""Compute precisions of the PyTorch model and of TensorRT engines (``precision`` parameter, sidecar
``precision`` of an engine). An exported ONNX graph has its own set (da3_ros.export.onnx_export
``ONNX_PRECISIONS``: fp32, fp16, int8_dynamic)."""

PRECISIONS = ("fp32", "fp16", "bf16")
