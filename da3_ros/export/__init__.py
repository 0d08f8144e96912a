"""Export of DA3 to ONNX and TensorRT engines, with sidecar metadata (see `sidecar`)."""
