"""Pose-conditioned windows: known camera poses in, metric depth consistent with those poses out.

This is the ROS-free core of ``pose_source: tf``. It reproduces what the official
``DepthAnything3.inference(images, extrinsics=..., intrinsics=..., align_to_input_ext_scale=True)``
does around the network, step by step (``depth_anything_3/api.py``):

1. **Convention.** Our poses are ``T_world_cam`` (camera-to-world: ``p_world = T_world_cam @ p_cam``;
   OpenCV camera axes x right, y down, z forward). DA3 extrinsics are **world->camera**
   (``E = inv(T_world_cam)``); :func:`da3_extrinsics_from_T_world_cam` is the one conversion.
2. **Normalisation** (``_normalize_extrinsics``): relative to the first view (``E'_v = E_v inv(E_0)``,
   so view 0 becomes the identity), translations divided by the median distance of the camera
   centres from camera 0, clamped at 0.1 (:func:`da3_ros.geometry.pose_encoding.normalize_window_extrinsics`).
   Done in float32 like the official (torch) code; geometry's NumPy twin of the torch pose encoding
   (:mod:`da3_ros.model.pose_encoding`) agrees with it to float32 rounding.
3. **Model input**: the camera encoder takes the 9-D pose encoding of the normalised poses and the
   intrinsics **in network pixels** (``[t, q xyzw, fov_h, fov_w]`` of camera-to-world; only fx, fy enter,
   via the fields of view). That ``(1, N, 9)`` float32 array is what the backends (``infer(pose_encoding=)``,
   its ``[0]``), our torch model (``pose_encoding=``, as a tensor) and the exported pose-conditioned graph
   (input ``pose_encoding``) take.
4. **Alignment back** (``_align_to_input_extrinsics_intrinsics`` -> ``align_poses_umeyama``): a
   Sim(3) Umeyama fit of the **given** camera centres onto the **predicted** ones
   (``c_pred ~= s R c_given + t``; positions only, unweighted), so ``s`` is prediction units per given
   unit; the depth is divided by ``s`` and the returned extrinsics/intrinsics are the given ones.
   Depth is then in the unit of the given poses (metres for TF) and consistent with them.

RANSAC: the official code switches to RANSAC only for ``N >= 10`` views (``ransac_view_thresh``), with
``random_state=42`` (deterministic; 10 iterations of ``max(3, (N+1)//2)``-view samples, inlier threshold =
median nearest-neighbour distance after the plain fit, final refit on the best inliers). It is ported in
:func:`fit_prediction_to_given_scale` with the same random stream, so windows of 10+ views give the official
scale too; samples evo cannot fit (fewer than three distinct camera centres, collinear ones) are skipped as
officially. With ``N < 10`` it is
the plain Umeyama fit of
:func:`da3_ros.geometry.alignment.umeyama` (the same maths as evo's ``umeyama_alignment`` used officially).

Deliberate deviation: evo raises for a centre covariance of rank < 2, so the official ``inference`` fails for
N = 2 views or exactly collinear camera centres (a robot driving straight, poses from wheel odometry). The Sim(3)
scale is still well defined there (ratio of the spreads along the line), so we return it; only coincident centres
(no baseline: the scale is unobservable) raise :class:`PoseConditioningError`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.geometry.alignment import umeyama
from da3_ros.geometry.pose_encoding import (extrinsics_intrinsics_to_pose_encoding, lower_median,
                                            normalize_window_extrinsics)
from da3_ros.geometry.transforms import check_rigid_transform, extrinsics_to_T_world_cam, transform_scale

__all__ = [
    "PoseConditioningError",
    "PoseConditionedWindow",
    "PoseAlignedPrediction",
    "da3_extrinsics_from_T_world_cam",
    "fit_prediction_to_given_scale",
    "MIN_NORMALISATION_DISTANCE",
    "RANSAC_MIN_VIEWS",
]

MIN_NORMALISATION_DISTANCE = 0.1  # official clamp of the median camera distance (given units)
RANSAC_MIN_VIEWS = 10             # official ``ransac_view_thresh``
_RANSAC_SEED = 42                 # official ``random_state``
_RANSAC_ITERATIONS = 10           # official ``ransac_max_iters``
_MIN_BASELINE = 1e-9              # camera centres closer than this (given units) carry no scale


class PoseConditioningError(ValueError):
    """The given poses cannot condition / align a window (bad shapes, non-rigid, no baseline)."""


def da3_extrinsics_from_T_world_cam(T_world_cam: np.ndarray) -> np.ndarray:
    """Camera-to-world poses ``(..., 4, 4)`` -> DA3 world->camera extrinsics ``(..., 4, 4)`` float64.

    ``E @ p_world = p_cam``; the camera centre ``c = T_world_cam[:3, 3]`` maps to the origin.
    Rejects matrices that are not rigid (``check_rigid_transform``: a Sim(3) or garbage pose).
    """
    T = np.asarray(T_world_cam, dtype=np.float64)
    if T.ndim < 2 or T.shape[-2:] != (4, 4):
        raise PoseConditioningError(f"T_world_cam must have shape (..., 4, 4), got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise PoseConditioningError("T_world_cam contains non-finite values")
    try:
        T = check_rigid_transform(T, "T_world_cam")
    except ValueError as exc:
        raise PoseConditioningError(str(exc)) from exc
    return extrinsics_to_T_world_cam(T)  # the rigid inverse; the same formula maps c2w -> w2c


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector ``a`` onto unit vector ``b``."""
    v, c = np.cross(a, b), float(a @ b)
    if c < -1.0 + 1e-12:  # opposite: half a turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _distinct_centres(centres: np.ndarray) -> int:
    """How many of the (n, 3) ``centres`` differ from every earlier one by more than ``_MIN_BASELINE``."""
    kept: list = []
    for c in centres:
        if all(float(np.linalg.norm(c - k)) > _MIN_BASELINE for k in kept):
            kept.append(c)
    return len(kept)


def _evo_rank_ok(x: np.ndarray, y: np.ndarray) -> bool:
    """evo's ``umeyama_alignment`` precondition, computed as evo computes it (x, y: (n, 3) rows): the
    cross-covariance of the centred sets has at least two singular values above float64 eps (else evo raises
    "Degenerate covariance rank" and the official RANSAC skips the sample)."""
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    outer = np.zeros((3, 3))
    for xi, yi in zip(x, y):
        outer += np.outer(yi - mean_y, xi - mean_x)
    d = np.linalg.svd(outer / len(x), compute_uv=False)
    return int(np.count_nonzero(d > np.finfo(d.dtype).eps)) >= 2


def _degenerate_sample(c_given: np.ndarray, c_pred: np.ndarray) -> bool:
    """A RANSAC sample the official code does not fit: fewer than three distinct camera centres on either side
    (a start-up window repeats views), or a covariance evo refuses (collinear centres)."""
    return (_distinct_centres(c_given) < 3 or _distinct_centres(c_pred) < 3
            or not _evo_rank_ok(c_pred, c_given))


def _ransac_scale(c_given: np.ndarray, c_pred: np.ndarray) -> np.ndarray:
    """Port of the official ``_ransac_align_sim3`` (same sampling stream); returns the 4x4 Sim(3).

    Like the official code (whose evo Umeyama raises on them, caught by ``except Exception: continue``) it skips
    degenerate samples (``_degenerate_sample``): fewer than three distinct centres, e.g. the repeated views of a
    padded start-up window, fix no rotation, so their fit must not compete for the inliers."""
    n = c_given.shape[0]
    rng = np.random.default_rng(_RANSAC_SEED)
    sub_n = max(3, (n + 1) // 2)
    T0 = umeyama(c_given, c_pred)
    aligned0 = c_given @ T0[:3, :3].T + T0[:3, 3]
    # official default threshold: median distance of each aligned given centre to its nearest predicted one
    thresh = float(np.median(np.linalg.norm(aligned0[:, None] - c_pred[None], axis=-1).min(axis=1)))
    best, best_score, best_inliers = T0, (-1, np.inf), None
    for _ in range(_RANSAC_ITERATIONS):
        sample = rng.choice(np.arange(n), size=sub_n, replace=False)
        if _degenerate_sample(c_given[sample], c_pred[sample]):
            continue
        try:
            T = umeyama(c_given[sample], c_pred[sample])
        except ValueError:
            continue
        errs = np.linalg.norm(c_given @ T[:3, :3].T + T[:3, 3] - c_pred, axis=1)
        inliers = errs <= thresh
        k = int(inliers.sum())
        mean_err = float(errs[inliers].mean()) if k > 0 else np.inf
        if k > best_score[0] or (k == best_score[0] and mean_err < best_score[1]):
            best, best_score, best_inliers = T, (k, mean_err), inliers
    if best_inliers is not None and best_inliers.sum() >= 3:
        return umeyama(c_given[best_inliers], c_pred[best_inliers])
    return best


def fit_prediction_to_given_scale(centres_given: np.ndarray, centres_pred: np.ndarray) -> np.ndarray:
    """Sim(3) ``T`` (4x4) with ``centres_pred ~= T(centres_given)``, as the official alignment fits it.

    Plain Umeyama for fewer than ``RANSAC_MIN_VIEWS`` views, the official RANSAC from there on.
    Two views (or collinear centres): the scale is the ratio of the baselines (the Umeyama limit).
    """
    cg = np.asarray(centres_given, dtype=np.float64)
    cp = np.asarray(centres_pred, dtype=np.float64)
    if cg.ndim != 2 or cg.shape[1] != 3 or cp.shape != cg.shape:
        raise PoseConditioningError(f"camera centres must be two (N, 3) arrays, got {cg.shape} / {cp.shape}")
    if not (np.all(np.isfinite(cg)) and np.all(np.isfinite(cp))):
        raise PoseConditioningError("camera centres contain non-finite values")
    spread = float(np.linalg.norm(cg - cg.mean(axis=0), axis=1).max()) if len(cg) else 0.0
    if len(cg) < 2 or spread < _MIN_BASELINE:
        raise PoseConditioningError("the given camera centres coincide (no baseline): the scale of the "
                                    "prediction relative to the given poses is unobservable")
    if len(cg) == 2:
        d_given, d_pred = cg[1] - cg[0], cp[1] - cp[0]
        s = float(np.linalg.norm(d_pred) / np.linalg.norm(d_given))
        if not s > 0:
            raise PoseConditioningError("the predicted camera centres coincide: no scale")
        # two points fit exactly: the smallest rotation taking one baseline direction onto the other
        R = _rotation_between(d_given / np.linalg.norm(d_given), d_pred / np.linalg.norm(d_pred))
        T = np.eye(4)
        T[:3, :3] = s * R
        T[:3, 3] = cp.mean(axis=0) - s * (R @ cg.mean(axis=0))
        return T
    try:
        return _ransac_scale(cg, cp) if len(cg) >= RANSAC_MIN_VIEWS else umeyama(cg, cp)
    except ValueError as exc:  # degenerate prediction (e.g. all predicted centres identical)
        raise PoseConditioningError(f"cannot fit the predicted poses to the given ones: {exc}") from exc


def _host_array(x) -> np.ndarray:
    """A NumPy array of ``x``; a torch tensor (duck-typed, so geometry needs no torch) is detached and copied
    to the host first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass(frozen=True)
class PoseAlignedPrediction:
    """A window's prediction expressed in the given poses' world frame and unit.

    ``depth`` (N, h, w) float32: z-depth in the unit of the given poses (= prediction / ``scale``).
    ``extrinsics`` (N, 3, 4) float32: world->camera of the **given** poses (as the official API returns).
    ``T_world_cam`` (N, 4, 4) float64: the given camera-to-world poses. ``intrinsics`` (N, 3, 3) float32:
    the given network-pixel intrinsics. ``scale``: prediction units per given unit (official ``s``).
    ``pose_residual``: RMS distance (given units) between the predicted camera centres mapped back by the
    fit and the given ones: how well the network followed the conditioning (0 for a perfect follow).
    """

    depth: np.ndarray
    extrinsics: np.ndarray
    T_world_cam: np.ndarray
    intrinsics: np.ndarray
    scale: float
    pose_residual: float


@dataclass(frozen=True)
class PoseConditionedWindow:
    """The known poses of one window and the exact network input made from them.

    Build with :meth:`from_poses`; feed ``pose_encoding`` (1, N, 9) float32 NumPy to the graph / a backend
    (``pose_encoding[0]``) or, as ``torch.from_numpy(pose_encoding)``, to the torch model;
    then :meth:`align` its depth and extrinsics back to the given poses.
    """

    T_world_cam: np.ndarray        # (N, 4, 4) float64, given camera-to-world poses (given world, given unit)
    intrinsics: np.ndarray         # (N, 3, 3) float64, network pixels
    network_hw: tuple[int, int]
    extrinsics: np.ndarray         # (N, 4, 4) float32, DA3 world->camera of the given poses (official float32)
    normalised_extrinsics: np.ndarray  # (N, 4, 4) float32, what the camera encoder sees (view 0 = identity)
    normalisation_distance: float  # median camera distance from view 0 after the clamp (given units)
    pose_encoding: np.ndarray      # (1, N, 9) float32

    @property
    def views(self) -> int:
        return int(self.T_world_cam.shape[0])

    @classmethod
    def from_poses(cls, T_world_cam: np.ndarray, intrinsics: np.ndarray,
                   network_hw: tuple[int, int]) -> "PoseConditionedWindow":
        """``T_world_cam`` (N, 4, 4) camera-to-world, any world frame and unit (TF: odom, metres);
        ``intrinsics`` (N, 3, 3) or (3, 3) in pixels of the ``network_hw = (h, w)`` network input."""
        T = np.asarray(T_world_cam, dtype=np.float64)
        if T.ndim != 3 or T.shape[1:] != (4, 4) or T.shape[0] < 1:
            raise PoseConditioningError(f"T_world_cam must have shape (N, 4, 4), got {T.shape}")
        n = T.shape[0]
        K = np.asarray(intrinsics, dtype=np.float64)
        if K.shape == (3, 3):
            K = np.repeat(K[None], n, axis=0)
        if K.shape != (n, 3, 3) or not np.all(np.isfinite(K)) or np.any(K[:, 0, 0] <= 0) or np.any(K[:, 1, 1] <= 0):
            raise PoseConditioningError(f"intrinsics must be (3, 3) or ({n}, 3, 3) with positive focal lengths, "
                                        f"got shape {K.shape}")
        h, w = (int(v) for v in network_hw)
        if h <= 0 or w <= 0:
            raise PoseConditioningError(f"network_hw must be positive, got {network_hw}")
        E = da3_extrinsics_from_T_world_cam(T).astype(np.float32)  # official: float32 tensors from here on
        e_norm = normalize_window_extrinsics(E[None], min_scale=MIN_NORMALISATION_DISTANCE)
        # the record of the divisor used inside (torch.median: the lower median for even N, as officially)
        dist = max(lower_median(np.linalg.norm(T[:, :3, 3] - T[:1, :3, 3], axis=1)), MIN_NORMALISATION_DISTANCE)
        enc = extrinsics_intrinsics_to_pose_encoding(e_norm, K.astype(np.float32)[None], (h, w))
        return cls(T_world_cam=T, intrinsics=K, network_hw=(h, w), extrinsics=E,
                   normalised_extrinsics=e_norm[0], normalisation_distance=dist, pose_encoding=enc)

    def align(self, depth, extrinsics) -> PoseAlignedPrediction:
        """Express the model's output in the given poses' frame and unit (official alignment).

        ``depth`` (N, h, w) or (1, N, h, w) and ``extrinsics`` (N, 3|4, 4) or (1, N, 3|4, 4) world->camera,
        as the model / graph returned them for this window (NumPy, or torch tensors: anything with ``.detach()``).
        """
        d, e = _host_array(depth), _host_array(extrinsics)
        n = self.views
        if d.ndim == 4 and d.shape[0] == 1:
            d = d[0]
        if e.ndim == 4 and e.shape[0] == 1:
            e = e[0]
        if d.shape != (n,) + self.network_hw:
            raise PoseConditioningError(f"depth must be ({n}, {self.network_hw[0]}, {self.network_hw[1]}), "
                                        f"got {d.shape}")
        if e.shape not in ((n, 3, 4), (n, 4, 4)):
            raise PoseConditioningError(f"extrinsics must be ({n}, 3|4, 4), got {e.shape}")
        c_pred = extrinsics_to_T_world_cam(e)[:, :3, 3]
        c_given = extrinsics_to_T_world_cam(self.extrinsics.astype(np.float64))[:, :3, 3]
        T = fit_prediction_to_given_scale(c_given, c_pred)
        s = transform_scale(T)
        back = (c_pred - T[:3, 3]) @ (T[:3, :3] / s)  # predicted centres in the given frame, given unit
        residual = float(np.sqrt(np.mean(np.sum((back / s - c_given) ** 2, axis=1))))
        return PoseAlignedPrediction(
            depth=(d / s).astype(np.float32),
            extrinsics=self.extrinsics[:, :3, :].copy(),
            T_world_cam=self.T_world_cam.copy(),
            intrinsics=self.intrinsics.astype(np.float32),
            scale=float(s),
            pose_residual=residual,
        )
