"""Test helper: the official ``DepthAnything3`` API object (``depth_anything_3/api.py``) on random weights.

The reference environment installs ``depth-anything-3`` with ``--no-deps`` (requirements/reference.txt), so
``api.py`` is not importable as shipped: it imports Pillow, torchvision, evo and the export stack (trimesh,
moviepy, pycolmap, ...), none of which the model needs. ``official_api(net)`` imports the real ``api.py``
after registering, **only for the modules that are missing**, minimal stand-ins of exactly the calls that
``inference()`` makes on the path the tests use (images given as same-size uint8 arrays, no export):

- ``PIL.Image``: ``fromarray`` / ``convert("RGB")`` / ``size`` / ``crop`` / ``np.asarray(img)``;
- ``torchvision.transforms``: ``ToTensor`` (HWC uint8 -> CHW float /255), ``Normalize`` ((x - mean) / std),
  ``CenterCrop`` (only for mixed sizes; not used by the tests);
- ``evo.core.trajectory.PosePath3D``: ``positions_xyz`` and ``align(ref, correct_scale=True)``, following
  evo 1.38.1's ``geometry.umeyama_alignment`` and ``PosePath3D.align`` step by step (Umeyama 1991 on the
  positions; raises for a covariance rank < 2 like evo; scale the positions, then apply the SE(3)), written
  independently of :mod:`da3_ros.geometry.alignment` so the parity of our alignment is not circular;
- ``depth_anything_3.utils.export`` and ``imageio`` (image saving): raising (never called here).

Everything else (``InputProcessor`` resize and intrinsics scaling, ``_normalize_extrinsics``, the model,
``OutputProcessor``, ``align_poses_umeyama`` incl. its RANSAC, ``depth / scale``) is the official code.

The official ``forward`` runs the backbone under autocast (fp16 on a CPU without bf16), which cannot give a
1e-4 parity; ``official_api(net, fp32=True)`` replaces only that wrapper by the same call without autocast
(reduced precision is compared separately in test_model_parity.py).
"""
from __future__ import annotations

import functools
import importlib
import sys
import types

import numpy as np
import torch

__all__ = ["official_api", "official_pose_align"]


def _missing(name: str) -> bool:
    if name in sys.modules:
        return False
    try:
        importlib.import_module(name)
        return False
    except ImportError:
        return True


class _Image:
    """The slice of ``PIL.Image.Image`` used by the official InputProcessor on uint8 RGB arrays."""

    def __init__(self, array: np.ndarray):
        assert array.dtype == np.uint8 and array.ndim == 3, (array.dtype, array.shape)   # an RGB image, as PIL's
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise TypeError(f"stand-in PIL only handles uint8 RGB (H, W, 3), got {array.dtype} {array.shape}")
        self._a = np.ascontiguousarray(array)

    @property
    def size(self):
        return (self._a.shape[1], self._a.shape[0])

    def convert(self, mode):
        if mode != "RGB":
            raise ValueError(mode)
        return self

    def crop(self, box):
        left, top, right, bottom = box
        return _Image(self._a[top:bottom, left:right])

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


def _install_pil():
    pil = types.ModuleType("PIL")
    image = types.ModuleType("PIL.Image")
    image.Image = _Image
    image.fromarray = lambda a: _Image(np.asarray(a))

    def _open(*_a, **_k):
        raise NotImplementedError("stand-in PIL cannot open files; pass arrays")
    image.open = _open
    pil.Image = image
    sys.modules["PIL"], sys.modules["PIL.Image"] = pil, image


def _install_torchvision():
    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")

    class ToTensor:
        def __call__(self, pic):  # torchvision: permute to CHW, then float / 255
            return torch.from_numpy(np.array(np.asarray(pic))).permute(2, 0, 1).contiguous().float().div(255)

    class Normalize:
        def __init__(self, mean, std):
            self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
            self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

        def __call__(self, t):
            return (t - self.mean) / self.std

    class CenterCrop:
        def __init__(self, size):
            self.size = size

        def __call__(self, t):
            h, w = self.size
            top = int(round((t.shape[-2] - h) / 2.0))
            left = int(round((t.shape[-1] - w) / 2.0))
            return t[..., top:top + h, left:left + w]

    tr.ToTensor, tr.Normalize, tr.CenterCrop = ToTensor, Normalize, CenterCrop
    tv.transforms = tr
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tr


def _umeyama_evo(x: np.ndarray, y: np.ndarray, with_scale: bool):
    """evo ``geometry.umeyama_alignment(x, y)``: x, y (3, n); returns (r, t, c) with y ~= c r x + t."""
    m, n = x.shape
    mean_x, mean_y = x.mean(axis=1), y.mean(axis=1)
    sigma_x = 1.0 / n * (np.linalg.norm(x - mean_x[:, None]) ** 2)
    outer = np.zeros((m, m))
    for i in range(n):
        outer += np.outer(y[:, i] - mean_y, x[:, i] - mean_x)
    cov = outer / n
    u, d, v = np.linalg.svd(cov)
    if np.count_nonzero(d > np.finfo(d.dtype).eps) < m - 1:
        raise ValueError("Degenerate covariance rank, Umeyama alignment is not possible")
    s = np.eye(m)
    if np.linalg.det(u) * np.linalg.det(v) < 0.0:
        s[m - 1, m - 1] = -1
    r = u.dot(s).dot(v)
    c = 1 / sigma_x * np.trace(np.diag(d).dot(s)) if with_scale else 1.0
    t = mean_y - (c * r).dot(mean_x)
    return r, t, c


class _PosePath3D:
    def __init__(self, poses_se3):
        self.poses_se3 = [np.array(p, dtype=np.float64) for p in poses_se3]

    @property
    def positions_xyz(self):
        return np.array([p[:3, 3] for p in self.poses_se3])

    def align(self, traj_ref, correct_scale=False):
        r, t, s = _umeyama_evo(self.positions_xyz.T, traj_ref.positions_xyz.T, correct_scale)
        se3 = np.eye(4)
        se3[:3, :3], se3[:3, 3] = r, t
        out = []
        for p in self.poses_se3:  # evo: scale the positions, then left-multiply by the SE(3)
            q = p.copy()
            q[:3, 3] *= s
            out.append(se3 @ q)
        self.poses_se3 = out
        return r, t, s


def _install_evo():
    evo = types.ModuleType("evo")
    core = types.ModuleType("evo.core")
    traj = types.ModuleType("evo.core.trajectory")
    traj.PosePath3D = _PosePath3D
    evo.core, core.trajectory = core, traj
    sys.modules.update({"evo": evo, "evo.core": core, "evo.core.trajectory": traj})


def _install_export():
    exp = types.ModuleType("depth_anything_3.utils.export")

    def export(*_a, **_k):
        raise NotImplementedError("export is not available in the reference environment")
    exp.export = export
    sys.modules["depth_anything_3.utils.export"] = exp


def _install_imageio():
    mod = types.ModuleType("imageio")

    def imwrite(*_a, **_k):
        raise NotImplementedError("imageio is not available in the reference environment")
    mod.imwrite = imwrite
    sys.modules["imageio"] = mod


@functools.lru_cache(maxsize=None)
def _official_modules():
    """Import ``depth_anything_3.api`` and ``.utils.pose_align`` with the stand-ins; then take the stand-ins
    out of ``sys.modules`` again (the imported official modules keep their references), so that no other
    test of the session sees a fake PIL / torchvision / evo."""
    before = set(sys.modules)
    if _missing("imageio"):
        _install_imageio()
    if _missing("PIL"):
        _install_pil()
    if _missing("torchvision"):
        _install_torchvision()
    if _missing("evo.core.trajectory"):
        _install_evo()
    try:
        importlib.import_module("depth_anything_3.utils.export")
    except ImportError:
        _install_export()
    try:
        api = importlib.import_module("depth_anything_3.api")
        pose_align = importlib.import_module("depth_anything_3.utils.pose_align")
    finally:
        for name in STAND_IN_NAMES:
            if name not in before and isinstance(sys.modules.get(name), types.ModuleType) \
                    and getattr(sys.modules[name], "__file__", None) is None:
                del sys.modules[name]
    return api, pose_align


STAND_IN_NAMES = ("PIL", "PIL.Image", "torchvision", "torchvision.transforms", "evo", "evo.core",
                  "evo.core.trajectory", "imageio", "depth_anything_3.utils.export")


def official_pose_align():
    """The official ``depth_anything_3.utils.pose_align`` module."""
    return _official_modules()[1]


def official_api(net: torch.nn.Module, variant: str = "da3-small", fp32: bool = True):
    """An official ``DepthAnything3`` whose network is ``net`` (e.g. ``make_official_model``)."""
    api_mod = _official_modules()[0]
    torch.manual_seed(0)
    api = api_mod.DepthAnything3(model_name=variant)
    api.model = net.eval()
    if fp32:
        def forward(self, image, extrinsics=None, intrinsics=None, export_feat_layers=None, infer_gs=False,
                    use_ray_pose=False, ref_view_strategy="saddle_balanced"):
            with torch.inference_mode():
                return self.model(image, extrinsics, intrinsics, export_feat_layers, infer_gs, use_ray_pose,
                                  ref_view_strategy)
        api.forward = types.MethodType(forward, api)
    return api
