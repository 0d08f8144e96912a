"""Benchmark of the fused map path per keyframe at 640x480 (prints JSON).

    .venv/bin/python bench/bench_map.py [--keyframes 60] [--baseline-keyframes 12] [--max-points 200000]

A synthetic camera walks through a 20 x 20 x 3 m box room (walls, floor, ceiling: ~1000 m^2 of
surface, ~400k voxels at 5 cm, so the map fills to ``--max-points`` and evicts), one keyframe every
0.25 m / 15 deg of yaw; depth has a smooth 1 % error, 0.2 % per-pixel noise (``--white-noise``)
and 5 % invalid pixels. The organized cloud comes from
the pipeline's ``OrganizedCloudBuilder`` (stride 1 = 307k points, the node's default stride 2 = 77k).
After warm-up keyframes fill the map to max_points, each keyframe is timed as the node pays it:

* ``add``: ``VoxelMap.add_keyframe`` including the camera -> odom transform (the ``map`` stage),
  wall time and process CPU time (the CPU time is steadier on a shared machine);
* ``points``: ``VoxelMap.points()``;
* ``message``: ``build_pointcloud2`` of the whole map (xyz + rgb), what the node publishes;

for this implementation and, side by side in the same run, the previous one (rebuild everything
on each keyframe; copied below as ``BaselineVoxelMap``, from commit 0d2882d). The baseline gets
fewer keyframes because each costs hundreds of milliseconds.
"""
import argparse
import json
import platform
import subprocess
import time
from collections import OrderedDict

import cv2
import numpy as np

from da3_ros.pipeline.point_cloud import OrganizedCloudBuilder
from da3_ros.pipeline.voxel_map import VoxelMap
from da3_ros.ros_io import build_pointcloud2

WIDTH, HEIGHT = 640, 480
K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
WHITE_NOISE = 0.002   # --white-noise sets it
ROOM_MIN, ROOM_MAX = np.array([-10.0, -10.0, -1.5]), np.array([10.0, 10.0, 1.5])


# --- the previous implementation (da3_ros/pipeline/voxel_map.py at 0d2882d), verbatim logic --------
def baseline_voxel_downsample(points, colours, voxel):
    if points.shape[0] == 0:
        return points, colours
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    first.sort()
    return points[first], (colours[first] if colours is not None else None)


class BaselineVoxelMap:
    def __init__(self, voxel_size=0.05, max_points=200_000):
        self.voxel_size, self.max_points = float(voxel_size), int(max_points)
        self._keyframes, self._fused = OrderedDict(), None

    def __len__(self):
        return 0 if self._fused is None else int(self._fused[0].shape[0])

    def add_keyframe(self, key, points, colours, T_odom_points):
        # the old frame_processor map stage: float32 matmul transform, then add
        pts = points.reshape(-1, 3) @ T_odom_points[:3, :3].T.astype(np.float32) + T_odom_points[:3, 3]
        pts = pts.astype(np.float32).reshape(-1, 3)
        valid = np.isfinite(pts).all(axis=1)
        cols = colours.reshape(-1, 3)[valid] if colours is not None else None
        self._keyframes[key] = baseline_voxel_downsample(pts[valid].astype(np.float32), cols, self.voxel_size)
        self._fused = None

    def points(self):
        if self._fused is None:
            while True:
                parts = list(self._keyframes.values())[::-1]
                if not parts:
                    self._fused = (np.zeros((0, 3), np.float32), None)
                    break
                pts = np.concatenate([p for p, _ in parts])
                has_col = all(c is not None for _, c in parts)
                cols = np.concatenate([c for _, c in parts]) if has_col else None
                pts, cols = baseline_voxel_downsample(pts, cols, self.voxel_size)
                if pts.shape[0] <= self.max_points or len(self._keyframes) == 1:
                    self._fused = (pts[: self.max_points], cols[: self.max_points] if cols is not None else None)
                    stored = sum(p.shape[0] for p, _ in self._keyframes.values())
                    if stored > 2 * self.max_points:
                        self._keyframes = OrderedDict([("fused", self._fused)])
                    break
                self._keyframes.popitem(last=False)
        return self._fused


# --- synthetic keyframes ------------------------------------------------------------------------
def keyframe(k: int, rng):
    """-> (depth (480, 640) float32 metres, rgb uint8, T_odom_cam) for keyframe k of the walk."""
    yaw = np.deg2rad(15.0 * k)
    centre = np.array([6.0 * np.cos(0.04 * k), 6.0 * np.sin(0.04 * k), 0.0])   # 0.25 m steps
    # optical frame (x right, y down, z forward) -> odom (z up), camera looking along yaw
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    R = np.stack([right, [0.0, 0.0, -1.0], forward], axis=1)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, centre
    u, v = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], axis=-1)
    d = rays_cam @ R.T
    with np.errstate(divide="ignore"):
        t_walls = np.where(d > 0, (ROOM_MAX - centre) / d, (ROOM_MIN - centre) / d)
    depth = np.min(np.where(np.isfinite(t_walls) & (t_walls > 0), t_walls, np.inf), axis=-1)
    # depth error of a network: smooth 1 % (correlated over ~32 px) plus per-pixel white noise
    smooth = cv2.resize(rng.standard_normal((HEIGHT // 32 + 1, WIDTH // 32 + 1)).astype(np.float32),
                        (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    depth *= 1.0 + 0.01 * smooth + WHITE_NOISE * rng.standard_normal(depth.shape)
    depth[rng.random(depth.shape) < 0.05] = np.nan
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return depth.astype(np.float32), rgb, T


def percentiles(samples):
    a = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "max_ms": round(float(a.max()), 3), "n": int(a.size)}


def run(map_cls, stride, frames, warmup_max, args):
    cloud = OrganizedCloudBuilder(stride=stride, min_depth=0.05, max_depth=50.0, confidence_threshold=0.0)
    vmap = map_cls(args.voxel, args.max_points)
    add, add_cpu, pts_t, msg_t, sizes = [], [], [], [], []
    k = 0
    warmup = 0
    while len(add) < frames:
        depth, rgb, T = frames_cache(k)
        xyz, colours, _ = cloud.build(depth, K, rgb, None)
        c0, t0 = time.process_time(), time.perf_counter()
        vmap.add_keyframe(k, xyz, colours, T_odom_points=T)
        t1, c1 = time.perf_counter(), time.process_time()
        p, c = vmap.points()
        t2 = time.perf_counter()
        build_pointcloud2(p, c)
        t3 = time.perf_counter()
        k += 1
        if len(vmap) < args.max_points and warmup < warmup_max:
            warmup += 1
            continue
        add.append(t1 - t0)
        add_cpu.append(c1 - c0)
        pts_t.append(t2 - t1)
        msg_t.append(t3 - t2)
        sizes.append(len(vmap))
    return {"add_keyframe": percentiles(add), "add_keyframe_cpu_time": percentiles(add_cpu),
            "points": percentiles(pts_t), "message_build": percentiles(msg_t),
            "add_points_message": percentiles(np.add(np.add(add, pts_t), msg_t)),
            "warmup_keyframes": warmup, "map_points_min": int(min(sizes)), "map_points_max": int(max(sizes)),
            "points_per_keyframe": int(xyz.shape[0] * xyz.shape[1])}


_CACHE = {}


def frames_cache(k):
    if k not in _CACHE:
        _CACHE[k] = keyframe(k, np.random.default_rng(k))
    return _CACHE[k]


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keyframes", type=int, default=60, help="timed keyframes per case (new implementation)")
    parser.add_argument("--baseline-keyframes", type=int, default=12, help="timed keyframes per case (baseline)")
    parser.add_argument("--max-points", type=int, default=200_000)
    parser.add_argument("--voxel", type=float, default=0.05)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--white-noise", type=float, default=WHITE_NOISE,
                        help="per-pixel relative depth noise (0.01 = worst case: most points in their own voxel)")
    parser.add_argument("--strides", default="1,2")
    args = parser.parse_args()
    globals()["WHITE_NOISE"] = args.white_noise
    results = {"cpu": cpu_model(), "numpy": np.__version__, "image": f"{WIDTH}x{HEIGHT}",
               "max_points": args.max_points, "voxel_m": args.voxel, "white_noise": args.white_noise, "cases": {}}
    for stride in map(int, args.strides.split(",")):
        results["cases"][f"incremental_stride{stride}"] = run(VoxelMap, stride, args.keyframes, 200, args)
        if not args.skip_baseline:
            results["cases"][f"baseline_stride{stride}"] = run(BaselineVoxelMap, stride, args.baseline_keyframes,
                                                               200, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
