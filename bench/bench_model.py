"""Benchmark: da3_ros.model forward vs the official DA3 forward, same weights, same inputs.

Prints one JSON document. Both models are da3-small with the same random weights (official
model built from its config, saved in the released HF layout, loaded by ``load_model``); each
configuration runs ours and the official model alternately (warm-up first), fp32, CPU,
``torch.set_num_threads(threads)``; reports per-run times, medians and ``official / ours``
(> 1 means ours is faster) plus the max relative output difference. Also times the ray-map pose
solver (N=4, 288x288 ray maps) against the official one.

    .venv/bin/python bench/bench_model.py [--repeats 3] [--threads 2] [--configs 1x504x504,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from da3_reference import (make_official_model, max_rel_error,  # noqa: E402
                           official_forward, save_hf_checkpoint)
from da3_ros.model.quaternion import quaternion_to_rotation_matrix  # noqa: E402
from da3_ros.model.ray_pose import rays_from_camera, solve_pose_from_rays  # noqa: E402
from da3_ros.model import load_model  # noqa: E402


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_forward(official, ours, n, h, w, repeats):
    x = torch.randn(1, n, 3, h, w, generator=torch.Generator().manual_seed(n * h + w))

    def run_ours():
        with torch.inference_mode():
            return ours(x)

    def run_official():
        return official_forward(official, x)

    ref, out = run_official(), run_ours()  # warm-up (and correctness)
    err = {k: max_rel_error(out[k], ref[k]) for k in ("depth", "depth_conf", "extrinsics", "intrinsics")}
    t_ours, t_off = [], []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i in range(repeats):
        if i % 2 == 0:
            t_ours.append(_time(run_ours))
            t_off.append(_time(run_official))
        else:
            t_off.append(_time(run_official))
            t_ours.append(_time(run_ours))
    cpu_per_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    mo, mf = statistics.median(t_ours), statistics.median(t_off)
    return {"views": n, "height": h, "width": w, "ours_s": t_ours, "official_s": t_off,
            "ours_median_s": mo, "official_median_s": mf, "official_over_ours": mf / mo,
            "cpu_per_wall": cpu_per_wall, "max_rel_error": err}


def bench_ray_solver(repeats, with_official):
    g = torch.Generator().manual_seed(0)
    n, image_hw, map_hw = 4, (504, 504), (288, 288)
    w2c = torch.cat((quaternion_to_rotation_matrix(torch.randn(1, n, 4, generator=g, dtype=torch.float64)),
                     torch.randn(1, n, 3, 1, generator=g, dtype=torch.float64)), dim=-1)
    k = torch.tensor([[302.4, 0, 252.0], [0, 277.2, 252.0], [0, 0, 1]], dtype=torch.float64).repeat(1, n, 1, 1)
    rays = rays_from_camera(w2c, k, image_hw, map_hw).float()
    noisy = rays + 0.01 * torch.randn(rays.shape, generator=g)
    conf = torch.ones(rays.shape[:-1])
    res = {"views": n, "ray_map_hw": list(map_hw)}
    for name, r in (("exact", rays), ("noisy_1pct", noisy)):
        solve_pose_from_rays(r, conf, image_hw)
        ts = [_time(lambda: solve_pose_from_rays(r, conf, image_hw)) for _ in range(max(5, repeats))]
        e, kk = solve_pose_from_rays(r, conf, image_hw)
        res[f"ours_{name}_s"] = ts
        res[f"ours_{name}_median_s"] = statistics.median(ts)
        res[f"ours_{name}_max_abs_err"] = {"extrinsics": float((e.double() - w2c).abs().max()),
                                           "intrinsics_px": float((kk.double() - k).abs().max())}
    if with_official:
        from depth_anything_3.utils.ray_utils import get_extrinsic_from_camray
        ts = [_time(lambda: get_extrinsic_from_camray(rays, conf[..., None], *map_hw))
              for _ in range(2)]
        res["official_s"] = ts
        res["official_median_s"] = statistics.median(ts)
        res["official_over_ours"] = res["official_median_s"] / res["ours_exact_median_s"]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default="1x504x504,4x504x504,1x280x504,4x280x504",
                    help="comma list of NxHxW")
    ap.add_argument("--no-official-ray-solver", action="store_true",
                    help="skip timing the official ray solver (~6 s per call)")
    args = ap.parse_args()
    stdout, sys.stdout = sys.stdout, sys.stderr  # the official code logs to stdout
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    official = make_official_model("da3-small", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        ours = load_model(save_hf_checkpoint(official, tmp, "da3-small"))
    results = []
    for cfg in args.configs.split(","):
        n, h, w = (int(v) for v in cfg.split("x"))
        results.append(bench_forward(official, ours, n, h, w, args.repeats))
        print(json.dumps(results[-1]), file=sys.stderr)
    out = {
        "benchmark": "da3_ros.model vs official DepthAnything3Net forward (da3-small, fp32)",
        "torch": torch.__version__, "threads": args.threads, "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "forward": results,
        "ray_solver": bench_ray_solver(args.repeats, not args.no_official_ray_solver),
    }
    sys.stdout = stdout
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
