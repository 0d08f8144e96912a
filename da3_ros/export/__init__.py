"""Export of DA3 to ONNX and TensorRT engines; the sidecar they write is the artefact contract's
(da3_ros.artifact.sidecar)."""
