"""``PinholeCamera``: the project's one camera model (ROS-free).

Convention (the ONE used everywhere in da3_ros): ROS ``sensor_msgs/CameraInfo`` / OpenCV /
``depth_image_proc``. Pixel coordinates ``(u, v)`` = (column, row) with the **centre** of the
top-left pixel at ``(0, 0)``: pixel ``(row i, column j)`` is at ``(u, v) = (j, i)`` and the image
centre is ``((W - 1) / 2, (H - 1) / 2)``. ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
Camera optical frame: x right, y down, z forward; depth is the z-distance along the optical axis:

    X = z * K^-1 [u, v, 1]^T

DA3 (``depth_anything_3``, DA3_MODEL_SPEC.md §4/§6) uses continuous coordinates whose origin is the
top-left pixel **corner** (its camera decoder puts the principal point at ``(W/2, H/2)``), i.e.
``c_da3 = c + 0.5``. Predicted intrinsics enter the project through
:meth:`PinholeCamera.from_da3_intrinsics` exactly once (``WindowProcessor``) and leave through
:meth:`PinholeCamera.to_da3_intrinsics` where something must look like a model output (the oracle
backend).

Resizing the whole image by ``(sx, sy)`` (``cv2.resize``, pixel-edge convention) maps
``u' = (u + 0.5) sx - 0.5``; cropping at ``(x0, y0)`` maps ``u' = u - x0``.

Validation (:class:`InvalidCameraError`): size ``1 <= W, H <= MAX_IMAGE_SIDE``; K finite, bottom row
``[0, 0, 1]``, ``K[1, 0] = 0``; focal lengths ``MIN_FOCAL_PX <= f <= B`` and ``|cx|, |cy|, |s| <= B``
with ``B = MAX_PX_PER_IMAGE_SIDE * max(W, H)`` (6.4e8 px for a 640x480 image: a 1e-4 degree field of
view; DA3's camera decoder never exceeds ``max(W, H) / 2 * 1e6``); distortion finite. Every ray
component is then at most ``(1 + 2e6) * MAX_IMAGE_SIDE / MIN_FOCAL_PX ~ 2e14``, so float32 ray grids,
K and points (depth up to 1e20) stay finite; a CameraInfo with ``fx = 1.2e39`` (inf in float32) is
rejected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PinholeCamera", "InvalidCameraError", "MAX_IMAGE_SIDE", "MIN_FOCAL_PX", "MAX_PX_PER_IMAGE_SIDE",
           "DA3_PIXEL_OFFSET", "DEFAULT_HFOV_DEG"]

MAX_IMAGE_SIDE = 100_000
"""Largest accepted image width/height (pixels)."""
MIN_FOCAL_PX = 1e-3
"""Smallest accepted focal length (pixels); real cameras have hundreds to thousands."""
MAX_PX_PER_IMAGE_SIDE = 1e6
"""Largest accepted focal length, ``|cx|``, ``|cy|`` and ``|skew|``, in units of ``max(W, H)``."""
DA3_PIXEL_OFFSET = 0.5
"""``c_da3 - c``: DA3's corner-origin pixel coordinates minus the pixel-centre ones."""
DEFAULT_HFOV_DEG = 60.0
"""The project's guess of the horizontal field of view (degrees) when neither camera_info nor the model gives
intrinsics: ``PinholeCamera.centred(width, height, DEFAULT_HFOV_DEG)``."""


class InvalidCameraError(ValueError):
    """Camera parameters that would give wrong or non-finite geometry (message holds the numbers)."""


def _as_K(K) -> np.ndarray:
    K = np.array(K, dtype=np.float64)  # copy
    if K.shape != (3, 3):
        raise InvalidCameraError(f"K must be 3x3, got shape {K.shape}")
    return K


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """A pinhole camera seeing a ``width`` x ``height`` image (see the module docstring).

    ``K`` is float64 (3, 3) in the pixel-centre convention (read-only copy). ``distortion_model``
    and ``distortion`` follow sensor_msgs/CameraInfo (``plumb_bob``, ``rational_polynomial``,
    ``equidistant``; empty = none); they are carried along but unprojection assumes a rectified
    image. Construction validates and raises :class:`InvalidCameraError`.
    """

    width: int
    height: int
    K: np.ndarray
    distortion_model: str = ""
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        w, h = self.width, self.height
        if not (isinstance(w, (int, np.integer)) and isinstance(h, (int, np.integer))):
            raise InvalidCameraError(f"image size must be integers, got {w!r}x{h!r}")
        if not (1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE):
            raise InvalidCameraError(f"image size {w}x{h} is outside 1..{MAX_IMAGE_SIDE} px")
        K = _as_K(self.K)
        D = np.array(self.distortion, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "width", int(w))
        object.__setattr__(self, "height", int(h))
        if not np.all(np.isfinite(K)):
            raise InvalidCameraError(f"K contains NaN/Inf: {K.ravel().tolist()}")
        fx, fy = K[0, 0], K[1, 1]
        bound = MAX_PX_PER_IMAGE_SIDE * max(w, h)
        if not (MIN_FOCAL_PX <= fx <= bound and MIN_FOCAL_PX <= fy <= bound):
            word = "non-positive" if min(fx, fy) <= 0 else "out-of-range"
            raise InvalidCameraError(f"K has {word} focal length fx={fx} fy={fy} (accepted for {w}x{h}: "
                                     f"{MIN_FOCAL_PX:g}..{bound:g} px)")
        if max(abs(K[0, 2]), abs(K[1, 2]), abs(K[0, 1])) > bound:
            raise InvalidCameraError(f"K has out-of-range principal point or skew cx={K[0, 2]} cy={K[1, 2]} "
                                     f"s={K[0, 1]} (accepted for {w}x{h}: |value| <= {bound:g} px)")
        if K[1, 0] != 0.0 or K[2, 0] != 0.0 or K[2, 1] != 0.0 or K[2, 2] != 1.0:
            raise InvalidCameraError(f"K is not a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]: "
                                     f"{K.ravel().tolist()}")
        if not np.all(np.isfinite(D)):
            raise InvalidCameraError(f"distortion D contains NaN/Inf: {D.tolist()}")
        K.setflags(write=False)
        D.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "distortion", D)
        object.__setattr__(self, "distortion_model", str(self.distortion_model))

    # ---------------------------------------------------------------- constructors / converters
    @classmethod
    def from_focal(cls, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> "PinholeCamera":
        """From focal lengths and principal point (pixel-centre convention)."""
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
        return cls(int(width), int(height), K)

    @classmethod
    def centred(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> "PinholeCamera":
        """Square pixels, principal point at the image centre ``((W-1)/2, (H-1)/2)``, horizontal
        field of view ``hfov_deg`` (degrees; default :data:`DEFAULT_HFOV_DEG`, the guess without camera_info)."""
        if not 0.0 < hfov_deg < 180.0:
            raise InvalidCameraError(f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls.from_focal(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_da3_intrinsics(cls, K_da3, width: int, height: int) -> "PinholeCamera":
        """A camera from DA3-convention intrinsics (pixel-corner origin, centre ``(W/2, H/2)``) of a
        ``width`` x ``height`` image, e.g. the model's predicted ``intrinsics[i]``."""
        K = _as_K(K_da3)
        K[0, 2] -= DA3_PIXEL_OFFSET * K[2, 2]
        K[1, 2] -= DA3_PIXEL_OFFSET * K[2, 2]
        return cls(int(width), int(height), K)

    def to_da3_intrinsics(self) -> np.ndarray:
        """K (float64 3x3) in DA3's pixel-corner convention (inverse of :meth:`from_da3_intrinsics`)."""
        K = self.K.copy()
        K[0, 2] += DA3_PIXEL_OFFSET
        K[1, 2] += DA3_PIXEL_OFFSET
        return K

    def with_K(self, K) -> "PinholeCamera":
        """The same image size and distortion with another K (pixel-centre convention)."""
        return PinholeCamera(self.width, self.height, K, self.distortion_model, self.distortion)

    # ---------------------------------------------------------------- properties
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height

    @property
    def is_distorted(self) -> bool:
        return self.distortion.size > 0 and bool(np.any(self.distortion != 0.0))

    def __eq__(self, other) -> bool:
        if not isinstance(other, PinholeCamera):
            return NotImplemented
        return (self.size == other.size and np.array_equal(self.K, other.K)
                and self.distortion_model == other.distortion_model
                and np.array_equal(self.distortion, other.distortion))

    __hash__ = None

    def __repr__(self) -> str:
        return (f"PinholeCamera({self.width}x{self.height}, fx={self.fx:g}, fy={self.fy:g}, cx={self.cx:g}, "
                f"cy={self.cy:g}{', ' + self.distortion_model if self.distortion_model else ''})")

    # ---------------------------------------------------------------- image operations
    def resized(self, width: int, height: int) -> "PinholeCamera":
        """The same camera seen through a resize of the whole image to ``width`` x ``height``
        (cv2.resize pixel-edge convention: ``u' = (u + 0.5) * sx - 0.5``, ``sx = width / W``)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, :] *= sx
        K[1, :] *= sy
        K[0, 2] += 0.5 * sx - 0.5
        K[1, 2] += 0.5 * sy - 0.5
        return PinholeCamera(int(width), int(height), K, self.distortion_model, self.distortion)

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "PinholeCamera":
        """The camera of the ``width`` x ``height`` window whose top-left pixel is pixel ``(x0, y0)``
        of this image (``u' = u - x0``). Negative offsets or a window beyond the image pad it (the
        inverse of a crop is a crop with negated offsets and the original size)."""
        K = self.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return PinholeCamera(int(width), int(height), K, self.distortion_model, self.distortion)

    # ---------------------------------------------------------------- geometry
    def rays(self, u, v) -> np.ndarray:
        """``K^-1 [u, v, 1]`` (float64, ``(..., 3)`` with z = 1) for pixel coordinates ``u``, ``v``
        (broadcast together; pixel-centre convention)."""
        u, v = np.broadcast_arrays(np.asarray(u, np.float64), np.asarray(v, np.float64))
        y = (v - self.cy) / self.fy
        x = (u - self.cx - self.K[0, 1] * y) / self.fx
        return np.stack([x, y, np.ones_like(x)], axis=-1)

    def ray_grid(self, stride: int = 1, dtype=np.float32) -> np.ndarray:
        """Rays ``(h', w', 3)`` (z = 1) of the pixels ``(u, v) = (stride * j, stride * i)``."""
        stride = int(stride)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        u = np.arange(0, self.width, stride, dtype=np.float64)
        v = np.arange(0, self.height, stride, dtype=np.float64)
        return self.rays(u[None, :], v[:, None]).astype(dtype, copy=False)

    def unproject(self, depth: np.ndarray, stride: int = 1) -> np.ndarray:
        """Camera-frame points ``(h', w', 3)`` from a z-depth map ``(H, W)`` of this image, sampled
        every ``stride`` pixels (dtype of ``depth``, float32 for integer depth)."""
        depth = np.asarray(depth)
        if depth.shape != (self.height, self.width):
            raise ValueError(f"depth is {depth.shape[1] if depth.ndim > 1 else '?'}x{depth.shape[0]} but the "
                             f"camera is {self.width}x{self.height}")
        d = depth[::stride, ::stride]
        dtype = d.dtype if np.issubdtype(d.dtype, np.floating) else np.float32
        return self.ray_grid(stride, dtype) * d[..., None].astype(dtype, copy=False)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates ``(..., 2)`` (u, v) of camera-frame points ``(..., 3)`` (z > 0)."""
        p = np.asarray(points, np.float64)
        uvw = p @ self.K.T
        return uvw[..., :2] / uvw[..., 2:3]
