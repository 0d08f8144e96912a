"""One camera's input to the window processor: ``CameraFrame`` (a frame) and ``CameraStream`` (its state).

``CameraStream`` keeps what the processor knows about one camera between frames: the rectification of its raw
images (``rectify``: a ``Rectifier`` whose maps are cached per calibration, image_proc's convention: the image is
remapped into the pinhole camera ``P[:3, :3]`` of its camera_info, same size), the mapping of its image size to
the network input (``NetworkInputMapping``: resize + centre crop, and back; a ``crop_warning`` when more than
``CROP_WARNING_FRACTION`` of the image is cropped away, naming the export that fits) and where its intrinsics come
from (``intrinsics_source``: camera_info, or the model's). A single camera is a rig of one stream.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple, Union

import numpy as np

from ..artifact.network_size import network_size_for_camera
from ..camera_models import RawCamera, Rectifier
from ..geometry.camera import PinholeCamera
from .network_input import NetworkInputMapping
from .window_outcome import StreamEvent

__all__ = ["CROP_WARNING_FRACTION", "CameraFrame", "CameraStream", "check_rgb"]

CROP_WARNING_FRACTION = 0.05
"""A camera that loses more than this fraction of its pixels to the network input's centre crop is warned about."""


@dataclass(frozen=True)
class CameraFrame:
    """One camera's frame of a snapshot: RGB uint8 (h, w, 3), its own stamp, its camera from camera_info (or None)
    and its mount ``T_base_cam`` (camera optical frame to base, metres; None when not known or not used).

    ``camera``: a ``PinholeCamera`` when the image is a pinhole (rectified) image, a ``RawCamera`` when it is raw
    (``CameraStream.rectify`` remaps it into the pinhole camera of P before anything else sees it)."""

    rgb: np.ndarray
    stamp_ns: int
    camera: Optional[Union[PinholeCamera, RawCamera]] = None
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
        self.rectifier = Rectifier(max_entries=2)
        self.rectification = "none yet"     # what the latest frame's rectification was (/diagnostics)
        self.rectify_seconds = 0.0          # the latest frame's rectification time
        self.crop_warning = ""              # non-empty while the camera loses > CROP_WARNING_FRACTION to the crop

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
        self.crop_warning = self._crop_warning(self.mapping)
        if self.crop_warning:
            events.append(StreamEvent("image_cropped", self.crop_warning))
        return changed

    def _crop_warning(self, mapping: NetworkInputMapping) -> str:
        """The warning for a camera that loses more than ``CROP_WARNING_FRACTION`` to the crop ("" otherwise),
        naming the export of the same long side that fits the camera (the official size rule)."""
        lost = mapping.cropped_fraction
        if lost <= CROP_WARNING_FRACTION:
            return ""
        w, h = mapping.camera_width, mapping.camera_height
        x0, y0, cw, ch = mapping.footprint()
        kept = " and ".join(([f"rows {y0}-{y0 + ch - 1}"] if ch < h else [])
                            + ([f"columns {x0}-{x0 + cw - 1}"] if cw < w else [])) or "part of the image"
        long_side = max(self.net_width, self.net_height)
        fit = f"export the network for this camera: da3-export onnx --camera-size {w}x{h} --long-side {long_side}"
        try:
            fit_h, fit_w = network_size_for_camera(w, h, long_side)
            fit += f" (network input {fit_h}x{fit_w} HxW)"
        except ValueError as exc:
            fit = f"no export of long side {long_side} fits ({exc})"
        return (f"{self._named('image')} {w}x{h} loses {100.0 * lost:.1f} % of its pixels to the centre crop into "
                f"the network input {self.net_height}x{self.net_width} (HxW; only {kept} are seen): {fit}")

    def rectify(self, frame: CameraFrame) -> CameraFrame:
        """A raw frame (``RawCamera`` of its image's size) rectified into the pinhole camera of P: the rectified
        image and that ``PinholeCamera`` (outputs are in this geometry); any other frame as it is (a RawCamera of
        another size is left to ``network_intrinsics``: a size mismatch)."""
        camera = frame.camera
        h, w = frame.rgb.shape[:2]
        if not isinstance(camera, RawCamera):
            self.rectification = "none (pinhole camera_info)" if camera is not None else "none (no camera_info)"
            return frame
        if (camera.width, camera.height) != (w, h):
            self.rectification = "none (camera_info size mismatch)"
            return frame
        t = time.perf_counter()
        rect = self.rectifier.rectification(camera)
        rgb = rect.remap(frame.rgb)
        self.rectify_seconds = time.perf_counter() - t
        self.rectification = (f"{camera.distortion_model or 'none'} -> P ({100.0 * rect.valid_fraction:.1f} % of the "
                              "rectified image inside the raw one)" if rect.needs_remap else "none (pinhole camera)")
        return replace(frame, rgb=rgb, camera=rect.camera)

    def network_intrinsics(self, frame: CameraFrame, events: List[StreamEvent]) -> Optional[np.ndarray]:
        """camera_info's K in network-input pixels (pixel-centre convention), or None (use the model's); sets
        ``intrinsics_source``."""
        camera = frame.camera   # a PinholeCamera after ``rectify`` (a RawCamera only when its size is wrong)
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
        info = {f"{prefix}intrinsics_source": self.intrinsics_source, f"{prefix}rectification": self.rectification}
        if self.mapping is not None:
            info[f"{prefix}camera_resolution"] = f"{self.mapping.camera_width}x{self.mapping.camera_height}"
            info[f"{prefix}cropped_fraction"] = round(self.mapping.cropped_fraction, 4)
        if self.crop_warning:
            info[f"{prefix}crop_warning"] = self.crop_warning
        return info
