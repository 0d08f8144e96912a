"""A synthetic wheeled robot in ``default_room``: base trajectory, camera mount, wheel odometry (ROS-free).

Frames (REP 103 / REP 105 names, exported as constants):

* ``odom`` (``ODOM_FRAME``): the room's world frame = ground-truth odometry frame: x, y on the floor,
  z up, floor at z = 0, metres.
* ``base_link`` (``BASE_FRAME``): the robot body on the floor (origin at z = 0), x forward, y left,
  z up. Its trajectory ``T_odom_base(t)`` is planar (x, y, yaw).
* ``camera_link`` (``CAMERA_LINK_FRAME``): REP 103 axes (x forward, y left, z up), mounted 0.3 m
  forward and 0.2 m up on the base and pitched down 10 deg: ``T_base_cameralink``.
* ``camera_optical`` (``CAMERA_OPTICAL_FRAME``): OpenCV optical axes (z forward, x right, y down),
  ``T_cameralink_optical`` is the fixed axis permutation. ``T_base_cam = T_base_cameralink @
  T_cameralink_optical``, and the rendering pose is ``T_odom_cam = T_odom_base @ T_base_cam`` (the
  renderer's ``T_world_cam``).
* ``wheel_odom`` (``WHEEL_ODOM_FRAME``): the frame of the simulated wheel odometry, which starts at
  identity at t = 0 (so it differs from ``odom`` by the start pose) and then drifts:
  ``T_odomwheel_base(t)``.

The default trajectory ``robot_tour`` (30 s; images at 10 Hz = 300 frames, like ``room_tour``):

==========  ========  =============================================================
time (s)    segment   motion of base_link
==========  ========  =============================================================
0-10        forward   3.0 m along +x from (-2.5, -1) at 0.3 m/s, heading wobbles +-4 deg
10-16       turn      quarter circle of radius 1 m to the left (90 deg)
16-19       stop      still
19-24       rotate    pure rotation in place, yaw +90 deg (the camera swings on its 0.3 m arm)
24-30       forward   1.8 m along -x at 0.3 m/s
==========  ========  =============================================================

Wheel odometry (``WheelOdometryConfig``): the ground-truth body-frame increments between samples
(50 Hz) are integrated with a translation scale error (+2 %), a yaw drift (deg/s, also while
stopped, as a gyro bias would), relative translation noise (per-axis std as a fraction of the step:
none while the wheels stand still) and yaw noise per sample, all seeded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .camera_paths import CameraPath

__all__ = ["ODOM_FRAME", "BASE_FRAME", "CAMERA_LINK_FRAME", "CAMERA_OPTICAL_FRAME", "WHEEL_ODOM_FRAME",
           "FRAME_NAMES", "T_CAMERALINK_OPTICAL", "planar_pose", "camera_mount", "BaseTrajectory", "robot_tour",
           "WheelOdometryConfig", "WheelOdometry", "simulate_wheel_odometry", "SyntheticRobot"]

ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
CAMERA_LINK_FRAME = "camera_link"
CAMERA_OPTICAL_FRAME = "camera_optical"
WHEEL_ODOM_FRAME = "wheel_odom"
FRAME_NAMES = {"odom": ODOM_FRAME, "base": BASE_FRAME, "camera_link": CAMERA_LINK_FRAME,
               "camera_optical": CAMERA_OPTICAL_FRAME, "wheel_odom": WHEEL_ODOM_FRAME}

# camera_link (x forward, y left, z up) -> optical (x right, y down, z forward): columns are the optical
# axes expressed in camera_link: x_opt = -y_link, y_opt = -z_link, z_opt = x_link.
T_CAMERALINK_OPTICAL = np.array([[0.0, 0.0, 1.0, 0.0],
                                 [-1.0, 0.0, 0.0, 0.0],
                                 [0.0, -1.0, 0.0, 0.0],
                                 [0.0, 0.0, 0.0, 1.0]])
T_CAMERALINK_OPTICAL.setflags(write=False)


def planar_pose(x, y, yaw) -> np.ndarray:
    """``T_odom_base`` (..., 4, 4) of planar poses: position (x, y, 0) in metres, yaw (rad) about +z."""
    x, y, yaw = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(yaw, np.float64))
    T = np.zeros(x.shape + (4, 4))
    c, s = np.cos(yaw), np.sin(yaw)
    T[..., 0, 0], T[..., 0, 1], T[..., 1, 0], T[..., 1, 1] = c, -s, s, c
    T[..., 2, 2] = T[..., 3, 3] = 1.0
    T[..., 0, 3], T[..., 1, 3] = x, y
    return T


def camera_mount(forward: float = 0.3, up: float = 0.2, pitch_down_deg: float = 10.0) -> np.ndarray:
    """``T_base_cameralink``: camera_link ``forward``/``up`` metres from base_link, pitched down.

    Pitching down is a positive rotation about the base y axis (left): it turns x (forward) towards -z.
    """
    a = np.radians(pitch_down_deg)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]]
    T[:3, 3] = [forward, 0.0, up]
    return T


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


@dataclass
class BaseTrajectory:
    """Planar ground-truth trajectory of base_link, sampled on a fine time grid (``dt``).

    ``t`` (n,) seconds from 0; ``x``, ``y`` metres and ``yaw`` rad (unwrapped) in ``odom``;
    ``segments``: (name, start_s, end_s) per segment. Poses between grid points are linearly
    interpolated (the grid is 1 ms by default: far below any sampling rate used).
    """

    name: str
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    segments: List[Tuple[str, float, float]]

    @property
    def duration(self) -> float:
        return float(self.t[-1])

    def planar_at(self, stamps) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, yaw) at ``stamps`` (s, within [0, duration])."""
        s = np.asarray(stamps, np.float64)
        if np.any(s < -1e-9) or np.any(s > self.duration + 1e-9):
            raise ValueError(f"stamps must lie in [0, {self.duration}] s, got {s.min()}..{s.max()}")
        return np.interp(s, self.t, self.x), np.interp(s, self.t, self.y), np.interp(s, self.t, self.yaw)

    def T_odom_base(self, stamps) -> np.ndarray:
        """Ground-truth ``T_odom_base`` (..., 4, 4) at ``stamps``."""
        return planar_pose(*self.planar_at(stamps))

    def segment_at(self, stamp: float) -> str:
        for name, a, b in self.segments:
            if a <= stamp < b:
                return name
        return self.segments[-1][0]


Rate = Callable[[np.ndarray], np.ndarray]


def _integrate(name: str, start: Tuple[float, float, float], pieces: Sequence[Tuple[str, float, Rate, Rate]],
               dt: float = 1e-3) -> BaseTrajectory:
    """Integrate body velocities ``v(tau)`` (m/s, forward) and ``w(tau)`` (rad/s) of each piece
    (``tau`` = time since the piece started) with exact arcs per fine step (midpoint rates)."""
    xs, ys, yaws, ts = [start[0]], [start[1]], [start[2]], [0.0]
    segments = []
    t0 = 0.0
    for seg, duration, v, w in pieces:
        n = int(round(duration / dt))
        tau_mid = (np.arange(n) + 0.5) * dt
        dth = w(tau_mid) * dt
        ds = v(tau_mid) * dt
        yaw_k = yaws[-1] + np.concatenate([[0.0], np.cumsum(dth)])
        # exact arc of a constant-rate step: chord ds * sinc(dth / 2) along the mid heading
        chord = ds * np.sinc(dth / (2 * np.pi))
        mid = yaw_k[:-1] + dth / 2
        xs.extend(xs[-1] + np.cumsum(chord * np.cos(mid)))
        ys.extend(ys[-1] + np.cumsum(chord * np.sin(mid)))
        yaws.extend(yaw_k[1:])
        ts.extend(t0 + np.arange(1, n + 1) * dt)
        segments.append((seg, t0, t0 + n * dt))
        t0 += n * dt
    return BaseTrajectory(name, np.asarray(ts), np.asarray(xs), np.asarray(ys), np.asarray(yaws), segments)


def robot_tour() -> BaseTrajectory:
    """The default 30 s floor trajectory (see the module docstring)."""
    wobble = np.radians(4.0)
    quarter = np.pi / 2
    const = lambda c: (lambda tau: np.full_like(tau, c))  # noqa: E731
    pieces = [
        # heading = wobble * sin(2 pi tau / 10): back to 0 at the end of the segment
        ("forward", 10.0, const(0.3), lambda tau: wobble * (2 * np.pi / 10.0) * np.cos(2 * np.pi * tau / 10.0)),
        ("turn", 6.0, const(quarter / 6.0 * 1.0), const(quarter / 6.0)),  # v = w * radius (1 m)
        ("stop", 3.0, const(0.0), const(0.0)),
        ("rotate", 5.0, const(0.0), const(quarter / 5.0)),
        ("forward", 6.0, const(0.3), const(0.0)),
    ]
    return _integrate("robot_tour", (-2.5, -1.0, 0.0), pieces)


@dataclass(frozen=True)
class WheelOdometryConfig:
    """Error model of the simulated wheel odometry (see the module docstring)."""

    rate_hz: float = 50.0
    scale_error: float = 0.02          # translation scale error: odometry reports (1 + e) x the true step
    yaw_drift_deg_s: float = 0.2       # heading drift rate, deg/s (constant, gyro-bias like)
    translation_noise: float = 0.02    # per-axis std of each step's translation, fraction of the step length
    yaw_noise_deg: float = 0.02        # std of each step's yaw increment, deg
    seed: int = 0

    def __post_init__(self):
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if not self.scale_error > -1:
            raise ValueError(f"scale_error must be > -1, got {self.scale_error}")
        if self.translation_noise < 0 or self.yaw_noise_deg < 0:
            raise ValueError("noise standard deviations must be >= 0")


@dataclass
class WheelOdometry:
    """Sampled wheel odometry: ``stamps`` (K,) s and the planar pose of base_link in ``wheel_odom``."""

    stamps: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray   # unwrapped, rad
    config: WheelOdometryConfig

    def __len__(self) -> int:
        return int(len(self.stamps))

    @property
    def T_odomwheel_base(self) -> np.ndarray:
        """(K, 4, 4) ``T_odomwheel_base`` at ``stamps``."""
        return planar_pose(self.x, self.y, self.yaw)

    def pose_at(self, stamps) -> np.ndarray:
        """``T_odomwheel_base`` at any ``stamps`` within the samples, interpolated linearly between
        samples (position and yaw), as a TF lookup between two messages would."""
        s = np.asarray(stamps, np.float64)
        if np.any(s < self.stamps[0] - 1e-9) or np.any(s > self.stamps[-1] + 1e-9):
            raise ValueError(f"stamps must lie in [{self.stamps[0]}, {self.stamps[-1]}] s")
        return planar_pose(np.interp(s, self.stamps, self.x), np.interp(s, self.stamps, self.y),
                           np.interp(s, self.stamps, self.yaw))


def simulate_wheel_odometry(trajectory: BaseTrajectory, config: WheelOdometryConfig = WheelOdometryConfig()
                            ) -> WheelOdometry:
    """Integrate the trajectory's body-frame increments between ``rate_hz`` samples with the error model.

    Step k -> k+1: true increment (dx, dy, dyaw) in the base frame at sample k; reported
    ``dx' = (1 + e) dx + n_x``, ``dy' = (1 + e) dy + n_y`` (``n ~ N(0, translation_noise * |step|)``),
    ``dyaw' = dyaw + drift * dt + N(0, yaw_noise)``; then composed from the identity at t = 0.
    """
    rng = np.random.default_rng(config.seed)
    n = int(np.floor(trajectory.duration * config.rate_hz + 1e-9)) + 1
    stamps = np.arange(n) / config.rate_hz
    x, y, yaw = trajectory.planar_at(stamps)
    dxw, dyw = np.diff(x), np.diff(y)
    c, s = np.cos(yaw[:-1]), np.sin(yaw[:-1])
    dx = c * dxw + s * dyw        # world step rotated into the base frame at sample k
    dy = -s * dxw + c * dyw
    dyaw = np.diff(yaw)
    step = np.hypot(dx, dy)
    dx = (1 + config.scale_error) * dx + rng.normal(size=n - 1) * config.translation_noise * step
    dy = (1 + config.scale_error) * dy + rng.normal(size=n - 1) * config.translation_noise * step
    dyaw = (dyaw + np.radians(config.yaw_drift_deg_s) / config.rate_hz
            + rng.normal(size=n - 1) * np.radians(config.yaw_noise_deg))
    oyaw = np.concatenate([[0.0], np.cumsum(dyaw)])
    co, so = np.cos(oyaw[:-1]), np.sin(oyaw[:-1])
    ox = np.concatenate([[0.0], np.cumsum(co * dx - so * dy)])
    oy = np.concatenate([[0.0], np.cumsum(so * dx + co * dy)])
    return WheelOdometry(stamps, ox, oy, oyaw, config)


@dataclass
class SyntheticRobot:
    """The robot: base trajectory + camera mount + wheel odometry, and its camera images' ground truth.

    ``fps``: image rate (images at ``k / fps`` s). Camera mount: ``camera_forward``/``camera_up``
    metres, ``camera_pitch_down_deg``.
    """

    trajectory: BaseTrajectory = field(default_factory=robot_tour)
    fps: float = 10.0
    camera_forward: float = 0.3
    camera_up: float = 0.2
    camera_pitch_down_deg: float = 10.0
    odometry_config: WheelOdometryConfig = field(default_factory=WheelOdometryConfig)
    _odometry: Optional[WheelOdometry] = field(default=None, init=False, repr=False)

    @property
    def T_base_cameralink(self) -> np.ndarray:
        return camera_mount(self.camera_forward, self.camera_up, self.camera_pitch_down_deg)

    @property
    def T_cameralink_optical(self) -> np.ndarray:
        return T_CAMERALINK_OPTICAL.copy()

    @property
    def T_base_cam(self) -> np.ndarray:
        """``T_base_cameralink @ T_cameralink_optical`` (base_link -> optical frame)."""
        return self.T_base_cameralink @ T_CAMERALINK_OPTICAL

    @property
    def static_transforms(self) -> List[Tuple[str, str, np.ndarray]]:
        """(parent, child, T_parent_child) of the static chain, as a static TF broadcaster sends it."""
        return [(BASE_FRAME, CAMERA_LINK_FRAME, self.T_base_cameralink),
                (CAMERA_LINK_FRAME, CAMERA_OPTICAL_FRAME, self.T_cameralink_optical)]

    @property
    def camera_stamps(self) -> np.ndarray:
        n = int(np.floor(self.trajectory.duration * self.fps + 1e-9)) + 1
        return np.arange(n) / self.fps

    def T_odom_base(self, stamps=None) -> np.ndarray:
        """Ground-truth base poses at ``stamps`` (default: the image stamps)."""
        return self.trajectory.T_odom_base(self.camera_stamps if stamps is None else stamps)

    def T_odom_cam(self, stamps=None) -> np.ndarray:
        """Ground-truth optical-frame poses ``T_odom_base @ T_base_cam`` (the renderer's ``T_world_cam``)."""
        return self.T_odom_base(stamps) @ self.T_base_cam

    @property
    def wheel_odometry(self) -> WheelOdometry:
        """The simulated wheel odometry (computed once, deterministic for the config's seed)."""
        if self._odometry is None:
            self._odometry = simulate_wheel_odometry(self.trajectory, self.odometry_config)
        return self._odometry

    def camera_path(self) -> CameraPath:
        """The camera's ground-truth path at the image stamps, for ``SyntheticSequence(path=...)``."""
        stamps = self.camera_stamps
        return CameraPath(self.trajectory.name, self.T_odom_cam(stamps),
                          [self.trajectory.segment_at(t) for t in stamps], fps=self.fps)

    def sequence(self, width: int = 320, height: int = 240, hfov_deg: float = 70.0, seed: int = 0, cache: bool = True):
        """A ``SyntheticSequence`` of the robot's camera in ``default_room``."""
        from .sequence import SyntheticSequence

        return SyntheticSequence(path=self.camera_path(), width=width, height=height, hfov_deg=hfov_deg, seed=seed,
                                 cache=cache)
