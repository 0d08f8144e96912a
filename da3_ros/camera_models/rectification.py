"""Rectification of a raw camera image into the pinhole camera of its camera_info's P (ROS-free).

A camera driver publishes the raw image and a ``sensor_msgs/CameraInfo`` with the calibration:
``distortion_model`` and ``D`` (the lens), ``K`` (the raw camera's intrinsics), ``R`` (the rectifying
rotation; identity for a monocular camera) and ``P`` (the rectified camera). image_proc's convention,
followed here: the rectified image has the same width and height as the raw one and its camera is
``P[:3, :3]`` (``P[:, 3]``, a stereo baseline, does not enter the image). A rectified pixel ``u`` looks
along ``R^T P[:3, :3]^-1 [u, 1]`` in the raw camera frame; the distortion model maps that ray to the raw
pixel it is sampled from. :class:`RawCamera` holds and checks those numbers; :class:`Rectifier` builds the
maps once per calibration (``cv2.initUndistortRectifyMap`` for ``plumb_bob`` / ``rational_polynomial``,
``cv2.fisheye.initUndistortRectifyMap`` for ``equidistant``; fixed-point ``CV_16SC2`` maps, 1/32 px) and
remaps each image bilinearly (``cv2.remap``, pixels whose source lies outside the raw image are 0).

Distortion models (names of ``sensor_msgs/distortion_models.hpp``) and their ``D``:

- ``plumb_bob``: ``k1, k2, p1, p2, k3`` (5);
- ``rational_polynomial``: ``k1, k2, p1, p2, k3, k4, k5, k6`` (8);
- ``equidistant``: ``k1, k2, k3, k4`` (4; OpenCV's fisheye model).

``D`` empty or all zero means no distortion (any model, also an empty model name); when in addition ``R``
is the identity and ``P[:3, :3] == K`` the image already is the pinhole image and is passed through
without a remap. Unfilled fields of uncalibrated drivers are read as ROS tools read them: ``R`` all zero
= identity, ``P`` all zero = ``[K | 0]``. Everything else that cannot give a correct pinhole image raises
:class:`RectificationError`, whose ``reason`` is a short name for a counter (``unknown_distortion_model``,
``distortion_length``, ``non_finite``, ``bad_shape``, ``bad_image_size``, ``bad_K``, ``bad_R``,
``bad_P``) and whose message holds the numbers.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from ..geometry.camera import MAX_IMAGE_SIDE, InvalidCameraError, PinholeCamera

__all__ = ["DISTORTION_COEFFICIENTS", "RawCamera", "Rectification", "RectificationError", "Rectifier",
           "ROTATION_TOLERANCE"]

DISTORTION_COEFFICIENTS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
"""Length of ``D`` for each supported ``distortion_model``."""
ROTATION_TOLERANCE = 1e-3
"""Largest accepted ``|R^T R - I|`` entry (calibration files print R with about 6-9 digits)."""
_POINT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


class RectificationError(ValueError):
    """A camera_info whose calibration cannot be rectified (``reason``: short name; message: the numbers)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _matrix(values, shape: Tuple[int, int], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64).reshape(-1)   # a copy
    if array.size != shape[0] * shape[1]:
        raise RectificationError("bad_shape", f"camera_info {name} must have {shape[0] * shape[1]} numbers, "
                                              f"got {array.size}")
    if not np.all(np.isfinite(array)):
        raise RectificationError("non_finite", f"camera_info {name} contains NaN/Inf: {array.tolist()}")
    return array.reshape(shape)


@dataclass(frozen=True, eq=False)
class RawCamera:
    """The calibration of a raw camera, as a sensor_msgs/CameraInfo gives it (see the module docstring).

    Construction copies, normalises (``R`` all zero -> identity, ``P`` all zero -> ``[K | 0]``, ``D`` as
    float64 of length 0 or the model's) and checks the numbers; it raises :class:`RectificationError`.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        distortion_model: ``plumb_bob`` | ``rational_polynomial`` | ``equidistant`` | ``""`` (no distortion).
        D: distortion coefficients (read-only float64).
        K: raw camera intrinsics, 3x3 (read-only float64).
        R: rectifying rotation, 3x3 (read-only float64).
        P: rectified projection, 3x4 (read-only float64).
    """

    width: int
    height: int
    distortion_model: str
    D: np.ndarray
    K: np.ndarray
    R: np.ndarray
    P: np.ndarray

    def __post_init__(self):
        w, h = self.width, self.height
        if not (isinstance(w, (int, np.integer)) and isinstance(h, (int, np.integer))
                and 1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE):
            raise RectificationError("bad_image_size", f"camera_info image size {w!r}x{h!r} is outside "
                                                       f"1..{MAX_IMAGE_SIDE} px")
        model = str(self.distortion_model).strip()
        D = np.array(self.D, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(D)):
            raise RectificationError("non_finite", f"camera_info D contains NaN/Inf: {D.tolist()}")
        K = _matrix(self.K, (3, 3), "K")
        R = _matrix(self.R, (3, 3), "R")
        P = _matrix(self.P, (3, 4), "P")
        if model and model not in DISTORTION_COEFFICIENTS:
            raise RectificationError("unknown_distortion_model",
                                     f"camera_info distortion model {model!r} is not supported (supported: "
                                     f"{', '.join(DISTORTION_COEFFICIENTS)})")
        if not model and np.any(D != 0.0):
            raise RectificationError("unknown_distortion_model", f"camera_info has distortion D = {D.tolist()} "
                                                                 "but no distortion model")
        if model and D.size not in (0, DISTORTION_COEFFICIENTS[model]):
            raise RectificationError("distortion_length", f"camera_info distortion model {model} needs "
                                                          f"{DISTORTION_COEFFICIENTS[model]} coefficients in D, "
                                                          f"got {D.size}: {D.tolist()}")
        try:
            PinholeCamera(int(w), int(h), K)
        except InvalidCameraError as exc:
            raise RectificationError("bad_K", f"camera_info K: {exc}") from None
        if not np.any(R):
            R = np.eye(3)
        if np.max(np.abs(R.T @ R - np.eye(3))) > ROTATION_TOLERANCE or np.linalg.det(R) <= 0.0:
            raise RectificationError("bad_R", f"camera_info R is not a rotation: {R.ravel().tolist()}")
        if not np.any(P):
            P = np.hstack([K, np.zeros((3, 1))])
        try:
            PinholeCamera(int(w), int(h), P[:, :3])
        except InvalidCameraError as exc:
            raise RectificationError("bad_P", f"camera_info P[:3, :3]: {exc}") from None
        for name, array in (("D", D), ("K", K), ("R", R), ("P", P)):
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "width", int(w))
        object.__setattr__(self, "height", int(h))
        object.__setattr__(self, "distortion_model", model)

    @classmethod
    def from_fields(cls, width: int, height: int, distortion_model: str, d: Sequence[float], k: Sequence[float],
                    r: Sequence[float], p: Sequence[float]) -> "RawCamera":
        """From CameraInfo's fields (``d``, row-major ``k`` (9), ``r`` (9), ``p`` (12)).

        Args:
            width: ``CameraInfo.width``.
            height: ``CameraInfo.height``.
            distortion_model: ``CameraInfo.distortion_model``.
            d: ``CameraInfo.d``.
            k: ``CameraInfo.k``.
            r: ``CameraInfo.r``.
            p: ``CameraInfo.p``.

        Returns:
            The checked camera.
        """
        return cls(int(width), int(height), str(distortion_model), np.asarray(d, dtype=np.float64),
                   np.asarray(k, dtype=np.float64), np.asarray(r, dtype=np.float64), np.asarray(p, dtype=np.float64))

    @property
    def key(self) -> tuple:
        """The numbers as a hashable tuple (the :class:`Rectifier` cache key: equal numbers, same maps)."""
        return (self.width, self.height, self.distortion_model, tuple(self.D.tolist()), tuple(self.K.ravel().tolist()),
                tuple(self.R.ravel().tolist()), tuple(self.P.ravel().tolist()))

    @property
    def has_distortion(self) -> bool:
        """Whether ``D`` has a non-zero coefficient."""
        return bool(np.any(self.D != 0.0))

    @property
    def is_pinhole(self) -> bool:
        """No distortion, ``R`` = identity and ``P[:3, :3]`` = ``K``: the raw image is the rectified one."""
        return (not self.has_distortion and np.array_equal(self.R, np.eye(3))
                and np.array_equal(self.P[:, :3], self.K))

    @property
    def rectified_camera(self) -> PinholeCamera:
        """The pinhole camera of the rectified image: ``P[:3, :3]``, same size, no distortion."""
        return PinholeCamera(self.width, self.height, self.P[:, :3])

    def _distortion(self) -> np.ndarray:
        n = DISTORTION_COEFFICIENTS.get(self.distortion_model, 5)
        return self.D if self.D.size else np.zeros(n)

    def rectify_points(self, uv_raw: np.ndarray) -> np.ndarray:
        """Raw pixels -> rectified pixels (``cv2.undistortPoints`` / ``cv2.fisheye.undistortPoints``, iterated
        to convergence; the inverse of the distortion).

        Args:
            uv_raw: (N, 2) raw pixel coordinates (pixel-centre convention).

        Returns:
            (N, 2) float64 pixel coordinates in the rectified camera.
        """
        src = np.asarray(uv_raw, dtype=np.float64).reshape(-1, 1, 2)
        P3 = np.ascontiguousarray(self.P[:, :3])
        if self.distortion_model == "equidistant":
            out = cv2.fisheye.undistortPoints(src, self.K, self._distortion(), R=self.R, P=P3,
                                              criteria=_POINT_CRITERIA)
        else:
            out = cv2.undistortPoints(src, self.K, self._distortion(), R=self.R, P=P3, criteria=_POINT_CRITERIA)
        return out.reshape(-1, 2)

    def distort_points(self, uv_rect: np.ndarray) -> np.ndarray:
        """Rectified pixels -> the raw pixels they are sampled from (what the maps hold).

        Args:
            uv_rect: (N, 2) rectified pixel coordinates.

        Returns:
            (N, 2) float64 raw pixel coordinates.
        """
        uv = np.asarray(uv_rect, dtype=np.float64).reshape(-1, 2)
        rays = np.linalg.solve(self.P[:, :3], np.vstack([uv.T, np.ones(len(uv))]))   # rectified frame
        rays = self.R.T @ rays                                                        # raw camera frame
        if self.distortion_model == "equidistant":
            normal = (rays[:2] / rays[2]).T.reshape(-1, 1, 2)
            return cv2.fisheye.distortPoints(normal, self.K, self._distortion()).reshape(-1, 2)
        out, _ = cv2.projectPoints(rays.T.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), self.K, self._distortion())
        return out.reshape(-1, 2)


@dataclass(frozen=True, eq=False)
class Rectification:
    """The maps of one calibration (build them with :class:`Rectifier`).

    Attributes:
        raw: the calibration.
        camera: the rectified pinhole camera (``P[:3, :3]``, same size, no distortion).
        map1: ``CV_16SC2`` integer part of the map (None: pinhole already, no remap).
        map2: ``CV_16UC1`` 1/32-pixel fraction table index (None with map1).
        build_ms: time it took to build the maps (milliseconds).
        valid_fraction: fraction of rectified pixels whose source pixel lies inside the raw image.
    """

    raw: RawCamera
    camera: PinholeCamera
    map1: Optional[np.ndarray]
    map2: Optional[np.ndarray]
    build_ms: float
    valid_fraction: float

    @classmethod
    def build(cls, raw: RawCamera) -> "Rectification":
        """Build the maps of ``raw`` (no maps when it already is a pinhole image).

        Args:
            raw: the calibration.

        Returns:
            The rectification.
        """
        start = time.perf_counter()
        camera = raw.rectified_camera
        if raw.is_pinhole:
            return cls(raw, camera, None, None, 1e3 * (time.perf_counter() - start), 1.0)
        size = (raw.width, raw.height)
        P3 = np.ascontiguousarray(raw.P[:, :3])
        if raw.distortion_model == "equidistant":
            map1, map2 = cv2.fisheye.initUndistortRectifyMap(raw.K, raw._distortion(), raw.R, P3, size, cv2.CV_16SC2)
        else:
            map1, map2 = cv2.initUndistortRectifyMap(raw.K, raw._distortion(), raw.R, P3, size, cv2.CV_16SC2)
        build_ms = 1e3 * (time.perf_counter() - start)
        map_x, map_y = cv2.convertMaps(map1, map2, cv2.CV_32FC1)
        inside = (map_x >= 0) & (map_x <= raw.width - 1) & (map_y >= 0) & (map_y <= raw.height - 1)
        return cls(raw, camera, map1, map2, build_ms, float(np.mean(inside)))

    @property
    def needs_remap(self) -> bool:
        """False when the raw image already is the rectified one."""
        return self.map1 is not None

    def float_maps(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(map_x, map_y)`` float32 (H, W): the raw pixel each rectified pixel samples (identity when none)."""
        if self.map1 is None:
            u, v = np.meshgrid(np.arange(self.raw.width, dtype=np.float32), np.arange(self.raw.height,
                                                                                      dtype=np.float32))
            return u, v
        return cv2.convertMaps(self.map1, self.map2, cv2.CV_32FC1)

    def remap(self, image: np.ndarray) -> np.ndarray:
        """Raw image (H, W) or (H, W, C), uint8 (any cv2.remap type) -> rectified image of the same shape.

        Bilinear; rectified pixels whose source lies outside the raw image are 0. A pinhole camera's
        image is returned as it is (no copy).

        Args:
            image: the raw image, of the calibration's size.

        Returns:
            The rectified image.
        """
        if image.shape[:2] != (self.raw.height, self.raw.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, camera_info says "
                             f"{self.raw.width}x{self.raw.height}")
        if self.map1 is None:
            return image
        return cv2.remap(image, self.map1, self.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)


class Rectifier:
    """Rectifies images; maps are built once per calibration and kept in a small LRU cache (thread-safe).

    A new camera_info with identical numbers (every message of a driver) finds its maps in the cache; a
    changed calibration builds new ones. ``builds`` counts the maps built so far.

    Args:
        max_entries: calibrations kept (a rig's cameras each have one).
    """

    def __init__(self, max_entries: int = 8):
        if int(max_entries) < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = int(max_entries)
        self.builds = 0
        self._cache: "OrderedDict[tuple, Rectification]" = OrderedDict()
        self._lock = threading.Lock()

    def rectification(self, raw: RawCamera) -> Rectification:
        """The (cached) maps of ``raw``.

        Args:
            raw: the calibration.

        Returns:
            The rectification of ``raw``.
        """
        key = raw.key
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        built = Rectification.build(raw)   # outside the lock: a build takes milliseconds
        with self._lock:
            self.builds += 1
            self._cache[key] = built
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return built

    def rectify(self, image: np.ndarray, raw: RawCamera) -> Tuple[np.ndarray, PinholeCamera]:
        """Raw image -> (rectified image, its pinhole camera).

        Args:
            image: uint8 (H, W, 3) RGB (or any image cv2.remap takes) of the calibration's size.
            raw: the calibration.

        Returns:
            ``(rectified image, camera)``; camera is ``P[:3, :3]``.
        """
        rect = self.rectification(raw)
        return rect.remap(image), rect.camera
