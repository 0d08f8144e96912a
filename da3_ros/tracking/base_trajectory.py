"""REP 105 base odometry from the visual camera trajectory (ROS-free; ``base_frame`` set).

The tracker gives ``T_vis_cam``: the camera (optical) pose in the visual odometry frame ``vis`` (= the
first camera frame; translations in odometry units ``u``). With the static mount ``T_base_cam`` (metres,
from TF) and the metric scale ``s`` (metres per odometry unit, or None when unknown) this module gives:

**Pose.** The odometry frame ``odom`` is the base frame at the first frame (REP 105: the robot starts at
the origin, z up for a level mount), so ``T_odom_vis = T_base_cam`` and::

    T_odom_base = T_odom_vis @ S(T_vis_cam, s) @ inv(T_base_cam),   T_odom_vis = T_base_cam

(a bare camera without a TF tree: the body is the camera, ``T_base_cam = I``, and ``odom`` is its first pose
rotated to REP 103 axes, ``T_odom_vis = T_BODY_OPTICAL``; ``node/robot_frames.py``)

where ``S`` multiplies the translation by ``s`` (metres). Without a scale (``s`` None) the visual
translation is taken as metres (``s = 1``): the lever arm of the mount is metric, the visual motion is
not, so the base pose is only approximate then (the covariance says so, below).

**Twist** (nav_msgs/Odometry: in the child frame, the base): from the previous tracked pose re-expressed at
the current scale (a refined scale is not a velocity), ``D = inv(T_prev) @ T_cur``: linear ``t(D) / dt``,
angular ``log(R(D)) / dt`` (rad/s). No previous pose (the first frame, after a reset or re-initialisation)
or ``dt <= 0``: zero twist with variance ``UNKNOWN_VARIANCE``.

**Covariance** (6x6 row-major, x y z then rotation about x y z, diagonal, isotropic per block):

* per-frame position error ``sigma_f = max(min_position_sigma_m, residual_gain * r * d) /
  max(inlier_ratio, 0.1)``: ``r`` the window alignment's median relative residual (tracker stats), ``d``
  the frame's median depth in metres; without alignment stats (first / re-anchored frames) the floor
  ``min_position_sigma_m``;
* drift: ``drift_per_metre`` x the distance travelled since the trajectory started (visual odometry
  error grows with the path);
* scale: ``relative scale uncertainty x |t(T_odom_base)|`` (a scale error stretches the trajectory about
  the origin);
* position variance = ``sigma_f^2 + drift^2 + scale^2``; rotation: ``sigma_r = max(min_rotation_sigma_deg,
  rotation_gain * shared_rotation_error_deg)`` plus ``rotation_drift_per_rad`` x the rotation travelled;
* **not in metres** (no metric scale known: none configured, or not known yet): position and linear-twist
  variances are ``UNKNOWN_VARIANCE`` (1e6, rtabmap's convention for "do not fuse"; a position in odometry
  units is no position in metres); the rotation entries keep their values (a rotation needs no scale), so an
  EKF can still fuse the orientation / yaw rate;
* twist: linear ``2 sigma_f^2 / dt^2 + (rel_scale * |v|)^2``, angular ``2 sigma_r^2 / dt^2``.

These are 1-sigma models of the tracker's quality numbers, not a calibrated filter: their purpose is that
robot_localization weighs this source sensibly (positive, finite, growing with the path and with bad
alignments, huge when the value is meaningless). The odom -> odometry_frame correction edge
(:func:`T_odom_odometry`) follows rtabmap's ``guess_frame_id`` convention (see README "On your robot").
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Optional, Tuple

import numpy as np

from ..geometry.transforms import check_rigid_transform, invert_transform, rotation_angle, rotation_log

__all__ = ["UNKNOWN_VARIANCE", "CovarianceModel", "BaseOdometrySample", "BaseOdometry", "T_odom_base_from_camera",
           "body_twist", "T_odom_odometry"]

#: variance published for a quantity that is unknown / must not be fused (rtabmap uses 9999 or 1e6)
UNKNOWN_VARIANCE = 1e6


def _rigid(T: np.ndarray, name: str) -> np.ndarray:
    T = np.asarray(T, np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{name} must be a finite 4x4 transform, got shape {T.shape}")
    return check_rigid_transform(T, name)


def T_odom_base_from_camera(T_vis_cam: np.ndarray, T_base_cam: np.ndarray, scale: Optional[float],
                            T_odom_vis: Optional[np.ndarray] = None) -> np.ndarray:
    """``T_odom_vis @ S(T_vis_cam, scale) @ inv(T_base_cam)`` (module docstring); ``scale`` None = 1,
    ``T_odom_vis`` None = ``T_base_cam``."""
    T = np.array(T_vis_cam, np.float64)
    if scale is not None:
        T[:3, 3] *= float(scale)
    return (T_base_cam if T_odom_vis is None else T_odom_vis) @ T @ invert_transform(T_base_cam)


def body_twist(T_prev: np.ndarray, T_cur: np.ndarray, dt: float) -> Tuple[np.ndarray, np.ndarray]:
    """(linear m/s, angular rad/s) in the child frame at ``T_cur`` from two poses ``dt`` seconds apart."""
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    D = invert_transform(T_prev) @ T_cur
    # D's translation is in the previous body frame; express it in the current one (R(D)^T)
    return D[:3, :3].T @ D[:3, 3] / dt, rotation_log(D[:3, :3]) / dt


def T_odom_odometry(T_odom_base: np.ndarray, T_odometry_base: np.ndarray) -> np.ndarray:
    """The ``odom_frame -> odometry_frame`` edge that makes ``odom -> odometry_frame -> base`` equal the
    visual estimate ``T_odom_base`` when the robot odometry owns ``odometry_frame -> base``."""
    return T_odom_base @ invert_transform(T_odometry_base)


@dataclass(frozen=True)
class CovarianceModel:
    """Parameters of the covariance model (module docstring). Lengths in metres, angles in degrees."""

    min_position_sigma_m: float = 0.01
    residual_gain: float = 1.0
    drift_per_metre: float = 0.02
    min_rotation_sigma_deg: float = 0.5
    rotation_gain: float = 1.0
    rotation_drift_per_rad: float = 0.02

    def __post_init__(self):
        for name in ("min_position_sigma_m", "min_rotation_sigma_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("residual_gain", "drift_per_metre", "rotation_gain", "rotation_drift_per_rad"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def frame_sigmas(self, stats: Optional[Dict[str, float]], median_depth_m: Optional[float]) -> Tuple[float, float]:
        """(position sigma m, rotation sigma rad) of one frame from the tracker's alignment stats."""
        sp = self.min_position_sigma_m
        sr = np.radians(self.min_rotation_sigma_deg)
        if stats:
            r = float(stats.get("median_residual", np.nan))
            inl = float(stats.get("inlier_ratio", np.nan))
            if np.isfinite(r) and median_depth_m is not None and np.isfinite(median_depth_m):
                sp = max(sp, self.residual_gain * r * float(median_depth_m))
            if np.isfinite(inl):
                sp /= max(inl, 0.1)
            rot = float(stats.get("shared_rotation_error_deg", np.nan))
            if np.isfinite(rot):
                sr = max(sr, np.radians(self.rotation_gain * rot))
        return float(sp), float(sr)


@dataclass(frozen=True)
class BaseOdometrySample:
    """One published odometry sample of the base (odom frame; twist in the base frame)."""

    stamp: float
    T_odom_base: np.ndarray
    linear: np.ndarray            # (3,) m/s, base frame
    angular: np.ndarray           # (3,) rad/s, base frame
    pose_covariance: np.ndarray   # (6, 6)
    twist_covariance: np.ndarray  # (6, 6)
    scale_known: bool
    twist_known: bool


class BaseOdometry:
    """Converts accepted camera poses into base poses, twists and covariances (module docstring).

    ``T_base_cam``: static mount (identity: ``base_frame`` empty, the camera is the body). ``T_odom_vis``: the
    odom frame from the first camera frame (default ``T_base_cam``: odom = the base at the first frame).
    ``scale_expected``: a metric scale source is configured (kept for the callers; positions get
    ``UNKNOWN_VARIANCE`` whenever no scale is known). ``max_history``: visual poses kept for :meth:`path`
    (re-scaled on every call).
    """

    def __init__(self, T_base_cam: Optional[np.ndarray] = None, scale_expected: bool = False,
                 covariance: Optional[CovarianceModel] = None, max_history: int = 1000,
                 T_odom_vis: Optional[np.ndarray] = None):
        self.T_base_cam = _rigid(np.eye(4) if T_base_cam is None else T_base_cam, "T_base_cam")
        self.T_odom_vis = self.T_base_cam if T_odom_vis is None else _rigid(T_odom_vis, "T_odom_vis")
        self.scale_expected = bool(scale_expected)
        self.covariance = covariance if covariance is not None else CovarianceModel()
        self._history: Deque[Tuple[float, np.ndarray]] = deque(maxlen=int(max_history))
        self._last: Optional[Tuple[float, np.ndarray, float, float]] = None   # stamp, T_vis_cam, sp, sr
        self._path_m = 0.0          # distance travelled by the base (m at the current scale)
        self._rotation_rad = 0.0
        self._last_vis: Optional[np.ndarray] = None

    def reset(self) -> None:
        """A new trajectory (``~/reset``, bag loop, re-initialisation): forget history and the twist."""
        self._history.clear()
        self._last = None
        self._last_vis = None
        self._path_m = 0.0
        self._rotation_rad = 0.0

    def break_twist(self) -> None:
        """The next sample has no twist (e.g. after a re-initialisation: the poses may kink)."""
        self._last = None

    @property
    def path_length_m(self) -> float:
        return self._path_m

    def update(self, stamp: float, T_vis_cam: np.ndarray, scale: Optional[float] = None,
               relative_scale_uncertainty: Optional[float] = None, stats: Optional[Dict[str, float]] = None,
               median_depth: Optional[float] = None) -> BaseOdometrySample:
        """One accepted frame. ``T_vis_cam`` in odometry units; ``scale`` m per unit (None: unknown);
        ``median_depth`` of the frame in odometry units; ``stats``: the tracker's ``FrameResult.stats``."""
        T_vis_cam = _rigid(T_vis_cam, "T_vis_cam")
        known = scale is not None and np.isfinite(scale) and scale > 0
        s = float(scale) if known else 1.0
        T = T_odom_base_from_camera(T_vis_cam, self.T_base_cam, s, self.T_odom_vis)
        if self._last_vis is not None:
            step = self._last_vis[:3, :3].T @ T_vis_cam[:3, :3]
            self._path_m += s * float(np.linalg.norm(T_vis_cam[:3, 3] - self._last_vis[:3, 3]))
            self._rotation_rad += rotation_angle(step)
        self._last_vis = T_vis_cam.copy()
        self._history.append((float(stamp), T_vis_cam.copy()))

        depth_m = s * median_depth if median_depth is not None else None
        sp, sr = self.covariance.frame_sigmas(stats, depth_m)
        rel = float(relative_scale_uncertainty) if (known and relative_scale_uncertainty is not None) else 0.0
        pos_var = sp ** 2 + (self.covariance.drift_per_metre * self._path_m) ** 2 \
            + (rel * float(np.linalg.norm(T[:3, 3]))) ** 2
        rot_var = sr ** 2 + (self.covariance.rotation_drift_per_rad * self._rotation_rad) ** 2
        metric_ok = known   # a position in odometry units is not to be fused as metres
        pose_cov = np.diag([pos_var if metric_ok else UNKNOWN_VARIANCE] * 3 + [rot_var] * 3)

        linear = np.zeros(3)
        angular = np.zeros(3)
        twist_cov = np.diag([UNKNOWN_VARIANCE] * 6)
        twist_known = False
        if self._last is not None and stamp - self._last[0] > 0:
            dt = float(stamp - self._last[0])
            # the previous pose at the current scale: a refined scale is no velocity
            linear, angular = body_twist(T_odom_base_from_camera(self._last[1], self.T_base_cam, s, self.T_odom_vis),
                                         T, dt)
            lin_var = 2 * max(sp, self._last[2]) ** 2 / dt ** 2 + (rel * float(np.linalg.norm(linear))) ** 2
            ang_var = 2 * max(sr, self._last[3]) ** 2 / dt ** 2
            twist_cov = np.diag([lin_var if metric_ok else UNKNOWN_VARIANCE] * 3 + [ang_var] * 3)
            twist_known = True
        self._last = (float(stamp), T_vis_cam, sp, sr)
        return BaseOdometrySample(float(stamp), T, linear, angular, pose_cov, twist_cov, metric_ok, twist_known)

    def path(self, scale: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(stamps (K,), T_odom_base (K, 4, 4)) of the kept history at ``scale`` (m per unit; None = 1):
        the whole path is re-expressed with the current scale, so it stays consistent while it is refined."""
        if not self._history:
            return np.zeros(0), np.zeros((0, 4, 4))
        stamps = np.array([h[0] for h in self._history])
        T = np.stack([h[1] for h in self._history]).copy()
        if scale is not None:
            T[:, :3, 3] *= float(scale)
        return stamps, self.T_odom_vis @ T @ invert_transform(self.T_base_cam)
