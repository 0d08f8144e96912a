"""Where the metric scale and the window poses come from: ``scale_source`` and ``pose_source`` (ROS-free).

The one home of these two parameters: their values, what each needs, and their validation. Everyone who asks
(the node's parameter checks, the TF reads of ``node/robot_frames.py``, the rig rules of ``node/rig_cameras.py``,
``RobotOdometry`` and the window processor) imports these types; nobody else parses the strings.

================ ===================== ====================================================================
scale_source     needs                 metres per odometry unit from
================ ===================== ====================================================================
none             nothing               (no metric scale: odometry units unless the model is metric or the
                                       windows are pose-conditioned)
odometry         robot odometry (TF)   the visual camera poses against ``odometry_frame -> base_frame``
rig              a rig (>= 2 cameras)  every window's camera centres against the rig's mounts
rig_odometry     a rig and odometry    both, fused by inverse variance
================ ===================== ====================================================================

``pose_source: tf`` feeds a pose-conditioned model each view's pose from TF (it needs the robot odometry too).
"""
from __future__ import annotations

from enum import Enum
from typing import List, Union

__all__ = ["ScaleSource", "PoseSource", "source_problems"]


class _Choice(str, Enum):
    """A parameter value of a fixed set; ``parse`` is the only way in from a parameter (trimmed, any case)."""

    @classmethod
    def parse(cls, value: Union[str, "_Choice"]):
        if isinstance(value, cls):
            return value
        key = str(value).strip().lower()
        for member in cls:
            if member.value == key:
                return member
        raise ValueError(f"{cls.parameter()} must be one of {' | '.join(cls.choices())}, got {value!r}")

    @classmethod
    def parameter(cls) -> str:
        """The parameter's name."""
        raise NotImplementedError

    @classmethod
    def choices(cls) -> tuple:
        return tuple(member.value for member in cls)

    def __str__(self) -> str:
        return self.value


class ScaleSource(_Choice):
    """``scale_source``: see the module docstring."""

    NONE = "none"
    ODOMETRY = "odometry"
    RIG = "rig"
    RIG_ODOMETRY = "rig_odometry"

    @classmethod
    def parameter(cls) -> str:
        return "scale_source"

    @property
    def uses_odometry(self) -> bool:
        """The robot odometry (TF ``odometry_frame -> base_frame``) measures the scale."""
        return self in (ScaleSource.ODOMETRY, ScaleSource.RIG_ODOMETRY)

    @property
    def uses_rig(self) -> bool:
        """The rig's extrinsics measure the scale (needs >= 2 cameras)."""
        return self in (ScaleSource.RIG, ScaleSource.RIG_ODOMETRY)

    @property
    def metric(self) -> bool:
        """A metric scale source is configured."""
        return self is not ScaleSource.NONE


class PoseSource(_Choice):
    """``pose_source``: none, or tf (the window's camera poses from TF for a pose-conditioned model)."""

    NONE = "none"
    TF = "tf"

    @classmethod
    def parameter(cls) -> str:
        return "pose_source"


def source_problems(scale_source, pose_source, num_cameras: int) -> List[str]:
    """Configuration problems of the two sources for ``num_cameras`` cameras (empty when fine)."""
    problems = []
    try:
        scale = ScaleSource.parse(scale_source)
    except ValueError as exc:
        problems.append(str(exc))
        scale = None
    try:
        PoseSource.parse(pose_source)
    except ValueError as exc:
        problems.append(str(exc))
    if scale is not None and scale.uses_rig and num_cameras < 2:
        problems.append(f"scale_source: {scale} needs a rig: set cameras (e.g. [left, right]) and base_frame")
    return problems
