"""Mapping between a camera image and the fixed network input of an exported model.

An engine runs at a fixed ``H x W``; camera images have their own size and aspect ratio. The
mapping resizes the camera image so that it *covers* the network size with the aspect ratio kept
(``scale = max(W / w, H / h)``), then centre-crops the overflow. Nothing is stretched, so the camera
intrinsics map exactly:

    K_net = [[s fx, 0, s (cx + 0.5) - 0.5 - x0], [0, s fy, s (cy + 0.5) - 0.5 - y0], [0, 0, 1]]

with ``(x0, y0)`` the crop offset in resized pixels (cv2.resize pixel-edge convention). Outputs at
network resolution map back to the camera grid over the crop's footprint; camera pixels outside the
footprint (cropped away) get NaN. Intrinsics are :class:`~da3_ros.geometry.camera.PinholeCamera`
(pixel-centre convention); the K formula above is ``camera.resized(*resized_size).cropped(x0, y0, W, H)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.camera import PinholeCamera

__all__ = ["NetworkInputMapping", "network_camera"]


@dataclass(frozen=True)
class NetworkInputMapping:
    camera_width: int
    camera_height: int
    net_width: int
    net_height: int

    def __post_init__(self):
        for name in ("camera_width", "camera_height", "net_width", "net_height"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def scale(self) -> float:
        return max(self.net_width / self.camera_width, self.net_height / self.camera_height)

    @property
    def resized_size(self) -> tuple[int, int]:
        """(width, height) of the camera image after the aspect-preserving resize (>= net size)."""
        s = self.scale
        return (max(self.net_width, int(round(self.camera_width * s))),
                max(self.net_height, int(round(self.camera_height * s))))

    @property
    def crop_offset(self) -> tuple[int, int]:
        rw, rh = self.resized_size
        return (rw - self.net_width) // 2, (rh - self.net_height) // 2

    @property
    def cropped_fraction(self) -> float:
        """Fraction of the camera image that the network does not see (0 when aspects match)."""
        rw, rh = self.resized_size
        return 1.0 - (self.net_width * self.net_height) / float(rw * rh)

    def footprint(self) -> tuple[int, int, int, int]:
        """(x0, y0, width, height) on the camera grid of the pixels whose centre the network input covers
        (network coordinate within ``[-0.5, size - 0.5]``, i.e. inside the crop's pixel edges)."""
        rw, rh = self.resized_size
        x0, y0 = self.crop_offset
        cx0, cw = _covered(self.camera_width, rw / self.camera_width, x0, self.net_width)
        cy0, ch = _covered(self.camera_height, rh / self.camera_height, y0, self.net_height)
        return cx0, cy0, cw, ch

    def image_to_network(self, rgb: np.ndarray) -> np.ndarray:
        """Camera RGB uint8 (h, w, 3) -> network RGB uint8 (H, W, 3) (resize with INTER_AREA when
        shrinking, INTER_CUBIC when enlarging, as the official preprocessing does; then crop)."""
        if rgb.shape[:2] != (self.camera_height, self.camera_width):
            raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, mapping expects "
                             f"{self.camera_width}x{self.camera_height}")
        rw, rh = self.resized_size
        if (rw, rh) != (self.camera_width, self.camera_height):
            interp = cv2.INTER_AREA if rw < self.camera_width else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, (rw, rh), interpolation=interp)
        x0, y0 = self.crop_offset
        return np.ascontiguousarray(rgb[y0:y0 + self.net_height, x0:x0 + self.net_width])

    def camera_to_network(self, camera: PinholeCamera) -> PinholeCamera:
        """The camera image's camera model -> the model of the network input (resize, then crop)."""
        if camera.size != (self.camera_width, self.camera_height):
            raise ValueError(f"camera is {camera.width}x{camera.height}, mapping expects "
                             f"{self.camera_width}x{self.camera_height}")
        x0, y0 = self.crop_offset
        return camera.resized(*self.resized_size).cropped(x0, y0, self.net_width, self.net_height)

    def network_to_camera(self, network_camera: PinholeCamera) -> PinholeCamera:
        """Inverse of :meth:`camera_to_network`: a network-input camera -> the camera image's."""
        if network_camera.size != (self.net_width, self.net_height):
            raise ValueError(f"network camera is {network_camera.width}x{network_camera.height}, mapping "
                             f"expects {self.net_width}x{self.net_height}")
        x0, y0 = self.crop_offset
        rw, rh = self.resized_size
        return network_camera.cropped(-x0, -y0, rw, rh).resized(self.camera_width, self.camera_height)

    def map_to_camera(self, values: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """A network-resolution map (H, W) float32 -> camera resolution (h, w); NaN outside the footprint.

        Exact inverse of :meth:`image_to_network`'s geometry (the same mapping as
        :meth:`network_to_camera`): the map is placed at the crop offset in the resized frame (edge
        values replicated around it) and resized to the camera size, so camera pixel ``u`` samples
        network coordinate ``(u + 0.5) * rw / w - 0.5 - x0``."""
        if values.shape != (self.net_height, self.net_width):
            raise ValueError(f"map is {values.shape}, expected {(self.net_height, self.net_width)}")
        values = np.ascontiguousarray(values, dtype=np.float32)
        rw, rh = self.resized_size
        x0, y0 = self.crop_offset
        if (rw, rh) != (self.net_width, self.net_height):
            values = cv2.copyMakeBorder(values, y0, rh - self.net_height - y0, x0, rw - self.net_width - x0,
                                        cv2.BORDER_REPLICATE)
        if (rw, rh) == (self.camera_width, self.camera_height):
            resized = values.copy()
        else:
            resized = cv2.resize(values, (self.camera_width, self.camera_height), interpolation=interpolation)
        fx0, fy0, fw, fh = self.footprint()
        resized[:fy0] = np.nan
        resized[fy0 + fh:] = np.nan
        resized[:, :fx0] = np.nan
        resized[:, fx0 + fw:] = np.nan
        return resized


def network_camera(camera: PinholeCamera, network_wh: tuple[int, int]) -> PinholeCamera:
    """The camera the network sees of ``camera``'s image mapped to a ``network_wh`` = (W, H) input: the validation
    every frame's camera goes through (``PinholeCamera``'s limits at network resolution; InvalidCameraError), so an
    input check that calls this refuses exactly what processing would."""
    net_w, net_h = (int(v) for v in network_wh)
    return NetworkInputMapping(camera.width, camera.height, net_w, net_h).camera_to_network(camera)


def _covered(n_camera: int, scale: float, crop: int, n_net: int) -> tuple[int, int]:
    """(first, count) of the camera pixels along one axis whose centre ``(i + 0.5) * scale`` (resized
    pixel-edge coordinate) lies inside the crop ``[crop, crop + n_net]``."""
    centres = (np.arange(n_camera) + 0.5) * scale
    inside = np.flatnonzero((centres >= crop) & (centres <= crop + n_net))
    return (int(inside[0]), int(inside.size)) if inside.size else (0, 0)
