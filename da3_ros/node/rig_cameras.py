"""The node's camera rig (``cameras`` parameter): names, topics, frames and configuration rules (ROS-free).

Each camera of ``cameras`` is a namespace relative to the node's (``left`` -> ``/da3/left`` under ``__ns:=/da3``;
remappable as any relative name): inputs ``<cam>/image`` (``<cam>/image/compressed``) and
``<cam>/camera_info``, outputs ``<cam>/depth``, ``<cam>/depth/camera_info``, ``<cam>/confidence``,
``<cam>/points``. A camera's frame is its image's ``header.frame_id`` (``<cam>_optical_frame`` when empty, the
name a URDF usually gives it); its mount ``T_base_cam`` comes from TF ``base_frame -> frame``. The rig pose is
the base's: ``base_frame`` is required.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Tuple

from ..pipeline.scale_source import PoseSource, ScaleSource, source_problems
from ..tools.rig_launch import CAMERA_NAME

__all__ = ["RigCameras", "rig_problems"]


@dataclass(frozen=True)
class RigCameras:
    names: Tuple[str, ...]

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> "RigCameras":
        return cls(tuple(str(n).strip() for n in values.get("cameras", []) or []))

    @property
    def active(self) -> bool:
        return len(self.names) > 0

    def __len__(self) -> int:
        return len(self.names)

    def topic(self, camera: int, suffix: str) -> str:
        return f"{self.names[camera]}/{suffix}"

    def label(self, camera: int) -> str:
        """The camera's name in /diagnostics keys (``front/left`` -> ``front_left``)."""
        return self.names[camera].replace("/", "_")

    def frame(self, camera: int, header_frame_id: str) -> str:
        return header_frame_id or f"{self.label(camera)}_optical_frame"


def rig_problems(values: Mapping[str, Any]) -> list[str]:
    """Configuration problems of the rig parameters (empty when fine, or when ``cameras`` is empty and no rig
    scale is asked for)."""
    names: Sequence[str] = [str(n).strip() for n in values.get("cameras", []) or []]
    problems = []
    if not names:
        try:
            scale = ScaleSource.parse(values.get("scale_source", "none"))
        except ValueError:   # an unknown value: the parameter choices report it
            return problems
        return source_problems(scale, PoseSource.NONE, num_cameras=1)
    bad = [n for n in names if not CAMERA_NAME.fullmatch(n)]
    if bad:
        problems.append(f"cameras {bad}: each must be a relative name (letters, digits, '_', '/' between parts; no "
                        "leading '/' or '~')")
    if len(set(names)) != len(names):
        problems.append(f"cameras must be distinct, got {list(names)}")
    if len(names) == 1:
        problems.append(f"cameras [{names[0]}]: a rig needs at least 2 cameras; for one camera leave cameras empty "
                        f"and remap image:={names[0]}/image")
    if not str(values.get("base_frame", "")).strip():
        problems.append("cameras need base_frame (the rig's body frame, e.g. base_link: the mounts base_frame -> "
                        "camera frame come from TF and the rig pose is the base's)")
    if str(values.get("camera_frame", "")).strip():
        problems.append("camera_frame must stay empty with cameras (each camera's frame is its image's frame_id)")
    return problems
