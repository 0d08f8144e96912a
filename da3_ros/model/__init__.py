"""Depth Anything 3 in PyTorch, ROS-free, export-ready.

Public API (stable):

* ``VARIANTS`` -- ``{name: config}`` of every released variant (``da3-small``, ``da3-base``,
  ``da3-large``, ``da3-giant``, ``da3metric-large``, ``da3mono-large``, ``da3nested-giant-large``).
* ``build_model(variant, device="cpu")`` -> model with random weights (eval mode).
* ``load_model(checkpoint, variant=None, device="cpu")`` -> model with strictly loaded weights from
  an HF-layout directory, a single ``.safetensors``/``.pth`` file or an HF repo id;
  ``save_checkpoint(net, directory, variant)`` writes the released layout.
* ``DA3Model.forward(images, *, ref_view="saddle_balanced", pose_encoding=None, return_rays=False)``
  with ``images`` ``(B, N, 3, H, W)`` ImageNet-normalised float32 (H, W multiples of 14) ->
  ``dict`` with ``depth``, ``depth_conf``, ``extrinsics`` (world->camera 3x4, OpenCV),
  ``intrinsics`` (network-input pixels) for any-view variants, ``sky`` for metric/mono, ``ray`` /
  ``ray_conf`` on request. See :mod:`da3_ros.model.network` for the conventions.
* ``model.prepare(height, width)`` precomputes the size-dependent tables (done lazily otherwise;
  call it before tracing). ``model.set_precision("fp32"|"fp16"|"bf16")``. ``model.variant``,
  ``model.config``.
* ``IMAGENET_MEAN``, ``IMAGENET_STD``, ``normalize_images``, ``normalize_uint8_images``.
* Pose conditioning: build the ``(B, N, 9)`` input on the host with
  ``da3_ros.model.pose_encoding.extrinsics_intrinsics_to_pose_encoding`` (torch, after
  ``normalize_window_extrinsics``) or its NumPy twin in ``da3_ros.geometry.pose_encoding``
  (``PoseConditionedWindow`` uses that one), so that the traced graph stays free of data-dependent ops.
* ``da3_ros.model.ray_pose``: camera pose and intrinsics from the ray map (``solve_pose_from_rays``) and the
  exact ray map of a camera (``rays_from_camera``).
"""

from da3_ros.artifact.ref_view import REF_VIEW_STRATEGIES

from .checkpoint import CheckpointError, load_model, load_weights, save_checkpoint
from .config import DEFAULT_PROCESS_RES, HF_REPOS, PATCH_SIZE, VARIANTS, DA3Config, NestedConfig
from .network import PRECISIONS, DA3Model, NestedDA3Model, build_model
from .normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images, normalize_uint8_images

__all__ = [
    "CheckpointError", "DA3Config", "DA3Model", "DEFAULT_PROCESS_RES", "HF_REPOS", "IMAGENET_MEAN",
    "IMAGENET_STD", "NestedConfig", "NestedDA3Model", "PATCH_SIZE", "PRECISIONS",
    "REF_VIEW_STRATEGIES", "VARIANTS", "build_model", "load_model", "load_weights", "save_checkpoint",
    "normalize_images", "normalize_uint8_images",
]
