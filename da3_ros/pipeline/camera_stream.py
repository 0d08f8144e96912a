"""One camera's input to the window processor: ``CameraFrame`` (a frame) and ``CameraStream`` (its state).

``CameraStream`` keeps what the processor knows about one camera between frames: the mapping of its image
size to the network input (``NetworkInputMapping``: resize + centre crop, and back) and where its intrinsics
come from (``intrinsics_source``: camera_info, or the model's). A single camera is a rig of one stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..geometry.camera import PinholeCamera
from .network_input import NetworkInputMapping
from .window_outcome import StreamEvent

__all__ = ["CameraFrame", "CameraStream", "check_rgb"]


@dataclass(frozen=True)
class CameraFrame:
    """One camera's frame of a snapshot: RGB uint8 (h, w, 3), its own stamp, camera_info (or None) and its mount
    ``T_base_cam`` (camera optical frame to base, metres; None when not known or not used)."""

    rgb: np.ndarray
    stamp_ns: int
    camera: Optional[PinholeCamera] = None
    T_base_cam: Optional[np.ndarray] = None


def check_rgb(rgb: np.ndarray, label: str = "") -> None:
    """ValueError unless ``rgb`` is a non-empty RGB uint8 (h, w, 3) image (``label``: which camera)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise ValueError(f"{label}expected an RGB uint8 (h, w, 3) image, got {rgb.dtype} {rgb.shape}")


class CameraStream:
    """See the module docstring. ``label``: the camera in event messages ("" for a single camera);
    ``network_wh``: the network input size."""

    def __init__(self, network_wh: Tuple[int, int], label: str = ""):
        self.net_width, self.net_height = (int(v) for v in network_wh)
        self.label = label
        self.mapping: Optional[NetworkInputMapping] = None
        self.intrinsics_source = "none yet"

    def _named(self, what: str) -> str:
        return f"{self.label} {what}" if self.label else what

    def update_size(self, width: int, height: int, events: List[StreamEvent]) -> bool:
        """Follow the camera's image size; True when it changed (a ``resolution_change`` event is added: the
        window must be reset, the odometry frame kept)."""
        mapping = self.mapping
        if mapping is not None and (mapping.camera_width, mapping.camera_height) == (width, height):
            return False
        changed = mapping is not None
        if changed:
            events.append(StreamEvent("resolution_change", f"{self._named('image')} size changed from "
                                      f"{mapping.camera_width}x{mapping.camera_height} to {width}x{height}: "
                                      "window reset (odometry frame kept)"))
        self.mapping = NetworkInputMapping(width, height, self.net_width, self.net_height)
        return changed

    def network_intrinsics(self, frame: CameraFrame, events: List[StreamEvent]) -> Optional[np.ndarray]:
        """camera_info's K in network-input pixels (pixel-centre convention), or None (use the model's); sets
        ``intrinsics_source``."""
        camera = frame.camera
        h, w = frame.rgb.shape[:2]
        if camera is None:
            self.intrinsics_source = "model (no camera_info)"
            return None
        if (camera.width, camera.height) != (w, h):
            events.append(StreamEvent("camera_info_size_mismatch", f"{self._named('camera_info')} is "
                                      f"{camera.width}x{camera.height} but the image is {w}x{h}: using the "
                                      "model's intrinsics"))
            self.intrinsics_source = "model (camera_info size mismatch)"
            return None
        self.intrinsics_source = "camera_info"
        return self.mapping.camera_to_network(camera).K

    def to_camera(self, depth_net: np.ndarray, confidence_net: Optional[np.ndarray],
                  camera: Optional[PinholeCamera], K_net: np.ndarray):
        """(depth, confidence, camera) at camera resolution from the network's: camera_info's camera when it is
        the intrinsics source, else the network camera ``K_net`` mapped back."""
        mapping = self.mapping
        depth = mapping.map_to_camera(depth_net)
        confidence = mapping.map_to_camera(confidence_net) if confidence_net is not None else None
        if camera is not None and self.intrinsics_source == "camera_info":
            return depth, confidence, camera
        return depth, confidence, mapping.network_to_camera(
            PinholeCamera(mapping.net_width, mapping.net_height, np.asarray(K_net, np.float64)))

    def describe(self, prefix: str) -> dict:
        """/diagnostics keys of this camera (``prefix``: "" for a single camera, ``camera<c>_`` in a rig)."""
        info = {f"{prefix}intrinsics_source": self.intrinsics_source}
        if self.mapping is not None:
            info[f"{prefix}camera_resolution"] = f"{self.mapping.camera_width}x{self.mapping.camera_height}"
            info[f"{prefix}cropped_fraction"] = round(self.mapping.cropped_fraction, 4)
        return info
