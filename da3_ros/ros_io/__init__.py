"""ROS message <-> numpy conversions (importable without a running node).

This is the only part of the core that imports ROS message packages; the model, geometry,
pipeline, backends and tracking modules never do.
"""
from .camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info
from .compressed_image import compressed_to_numpy, compressed_to_rgb, numpy_to_compressed
from .errors import MessageConversionError
from .image_conversion import image_to_numpy, image_to_rgb, numpy_to_image, to_rgb8
from .image_encodings import encoding_info
from .pointcloud import build_pointcloud2, pack_rgb, pointcloud2_xyz_rgb, read_pointcloud2, unpack_rgb
from .pose_messages import (BoundedPath, matrix_to_pose, ns_to_stamp, odometry, pose_stamped, pose_to_matrix,
                            stamp_to_ns, transform_stamped, transform_to_matrix)

__all__ = [
    "BoundedPath", "MessageConversionError", "build_pointcloud2", "camera_info_to_intrinsics",
    "compressed_to_numpy", "compressed_to_rgb", "encoding_info", "image_to_numpy", "image_to_rgb",
    "intrinsics_to_camera_info", "matrix_to_pose", "ns_to_stamp", "numpy_to_compressed", "numpy_to_image", "odometry",
    "pose_to_matrix",
    "pack_rgb", "pointcloud2_xyz_rgb", "pose_stamped", "read_pointcloud2", "stamp_to_ns", "to_rgb8",
    "transform_stamped", "transform_to_matrix", "unpack_rgb",
]
