"""Names and shapes of an exported graph's tensors (INTERFACES.md), shared by the exporter, the
sidecar and the backends' output type (:class:`~da3_ros.backends.prediction.WindowPrediction` has one
field per output name).

Inputs: ``images`` uint8 ``(1, N, H, W, 3)`` RGB, ``pose_encoding`` float32 ``(1, N, 9)`` (pose-conditioned
graphs only). Outputs, in this order (the subset present depends on the variant/options): see
:data:`OUTPUT_NAMES`.
"""
from __future__ import annotations

IMAGES_INPUT = "images"
POSE_ENCODING_INPUT = "pose_encoding"
#: Components of one view's pose encoding: camera-to-world t(3), quaternion xyzw(4), fov_h, fov_w.
POSE_ENCODING_DIM = 9

#: Split exports (da3_ros.export.split_export): the per-view encoder graph's outputs, which the window graph
#: takes for the N views (``(1, N, T, C)`` / ``(1, N, C)``; T = 1 + H/14 * W/14 tokens of C channels).
VIEW_TOKENS = "view_tokens"
#: The special token that the reference-view selection reads (window graphs with an in-graph selection).
SELECTION_TOKEN = "selection_token"
#: The two graphs of a split export, as the sidecar's ``split`` names them.
ENCODER_GRAPH = "encoder"
WINDOW_GRAPH = "window"

#: Output names in the order every exported graph lists them (and WindowPrediction.arrays() returns them).
OUTPUT_NAMES = ("depth", "depth_conf", "extrinsics", "intrinsics", "ray", "ray_conf", "sky", "metric_depth",
                "descriptor")
#: The optional place-recognition output (graphs exported with ``--with-descriptor``): ``(1, N, D)`` float32, one
#: L2-normalised global descriptor per view (the backbone's mean-pooled patch tokens before cross-view attention,
#: :meth:`da3_ros.model.backbone.VisionTransformer.forward`). A graph without it is valid (no loop closure then).
DESCRIPTOR_OUTPUT = "descriptor"
