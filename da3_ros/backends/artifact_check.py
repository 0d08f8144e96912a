"""`da3-export check`: compare an exported model (ONNX via ONNX Runtime, engine via TensorRT) with
the PyTorch reference (fp32, CPU) on random and real images; report per-output differences.

It runs two backends against each other, so it lives with the backends (which depend on the exporter,
never the other way round).

Error measures per output (both computed over the whole tensor):
``max_abs = max |candidate - reference|`` and ``max_rel = max_abs / max |reference|`` (relative to
the output's scale, so values near zero do not dominate). Real images: the files given, else the
DA3 sample assets in ``../shared/data`` when present (PNG photos, frames of the MP4), resized to cover
H x W and centre-cropped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

#: Default pass/fail thresholds on ``max_rel`` by the artifact's precision. int8_dynamic: the
#: u8s8_reduced_range scheme's integer products are exact on AVX2, AVX-512 and VNNI/AMX hosts alike
#: (da3_ros.export.int8_quantization), so its error is the weights' and activations' rounding only,
#: the same on every x86 CPU: 4e-4 depth / 1e-2 extrinsics vs fp32 on random DA3-Small weights
#: (notes/export.md); 1e-1 leaves room for the real weights' larger activation outliers.
DEFAULT_RTOL = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 1e-1, "int8_dynamic": 1e-1}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def compare_outputs(candidate: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> Dict[str, Dict]:
    """``{name: {"max_abs", "max_rel", "shape"}}`` for every name present in ``reference``."""
    report = {}
    for name, ref in reference.items():
        if ref is None:
            continue
        if name not in candidate or candidate[name] is None:
            raise ValueError(f"candidate lacks output {name!r}")
        cand = np.asarray(candidate[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if cand.shape != ref.shape:
            raise ValueError(f"output {name!r}: shape {cand.shape} != reference {ref.shape}")
        max_abs = float(np.max(np.abs(cand - ref))) if ref.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        report[name] = {"max_abs": max_abs, "max_rel": max_abs / max(scale, 1e-12), "shape": list(ref.shape),
                        "finite": bool(np.isfinite(cand).all())}
    return report


def default_data_dirs() -> List[Path]:
    repo = Path(__file__).resolve().parents[2]
    return [Path.cwd() / ".." / "shared" / "data", repo / ".." / "shared" / "data"]


def fit_to_network(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (area) so the image covers H x W, then centre-crop; uint8 RGB (H, W, 3)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = max(height / h, width / w)
    nh, nw = max(height, int(round(h * scale))), max(width, int(round(w * scale)))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])


def _read_video_frames(path: Path, count: int) -> List[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    frames = []
    for idx in np.linspace(0, max(total - 1, 0), count).round().astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, bgr = cap.read()
        if ok:
            frames.append(bgr[:, :, ::-1])
    cap.release()
    return frames


def load_real_window(paths: Optional[Sequence[str]], views: int, height: int, width: int) -> Optional[np.ndarray]:
    """(N, H, W, 3) uint8 from the given files (images and/or videos) or the shared sample data;
    ``None`` when there is nothing to read. Fewer images than N are cycled."""
    import cv2

    files: List[Path] = []
    if paths:
        for p in map(Path, paths):
            files.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p])
    else:
        for d in default_data_dirs():
            if d.is_dir():
                files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
                break
    frames: List[np.ndarray] = []
    for f in files:
        if f.suffix.lower() in VIDEO_SUFFIXES:
            frames.extend(_read_video_frames(f, views))
        else:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"cannot read image {f}")
            frames.append(bgr[:, :, ::-1])
    if not frames:
        return None
    frames = [frames[i % len(frames)] for i in range(views)]
    return np.stack([fit_to_network(f, height, width) for f in frames])


def run_check(model_path: str, checkpoint: str, *, images: Optional[Sequence[str]] = None, seed: int = 0,
              providers: Optional[Sequence[str]] = None, num_threads: int = 0,
              variant: Optional[str] = None) -> Dict:
    """Run both backends on a random and (when available) a real window; return the report."""
    from da3_ros.artifact.sidecar import read_sidecar
    from da3_ros.backends.torch_backend import TorchBackend
    from da3_ros.export.export_wrapper import example_pose_encoding

    sidecar = read_sidecar(model_path)
    if str(model_path).endswith(".engine"):
        from da3_ros.backends.tensorrt_backend import TensorRTBackend

        candidate = TensorRTBackend(model_path)
    else:
        from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        candidate = OnnxRuntimeBackend(model_path, providers=providers, num_threads=num_threads)
    reference = TorchBackend(checkpoint, variant=variant or sidecar.variant, views=sidecar.views,
                             height=sidecar.height, width=sidecar.width, ref_view=sidecar.ref_view,
                             pose_conditioned=sidecar.pose_conditioned, with_rays=sidecar.with_rays,
                             with_descriptor=sidecar.with_descriptor,
                             num_threads=num_threads)
    rng = np.random.default_rng(seed)
    windows = {"random": rng.integers(0, 256, size=(sidecar.views, sidecar.height, sidecar.width, 3),
                                      dtype=np.uint8)}
    real = load_real_window(images, sidecar.views, sidecar.height, sidecar.width)
    if real is not None:
        windows["real"] = real
    pose = example_pose_encoding(sidecar.views, rng) if sidecar.pose_conditioned else None
    results = {}
    for label, window in windows.items():
        cand = candidate.infer(window, pose).arrays()
        ref = reference.infer(window, pose).arrays()
        results[label] = compare_outputs(cand, ref)
    candidate.close()
    reference.close()
    rtol = DEFAULT_RTOL.get(sidecar.precision, 1e-4)
    worst = max(v["max_rel"] for r in results.values() for v in r.values())
    finite = all(v["finite"] for r in results.values() for v in r.values())
    return {"model": str(model_path), "backend": candidate.name, "precision": sidecar.precision,
            "variant": sidecar.variant, "views": sidecar.views, "height": sidecar.height, "width": sidecar.width,
            "results": results, "worst_max_rel": worst, "rtol": rtol, "passed": bool(worst <= rtol and finite)}


def format_report(report: Dict) -> str:
    lines = [f"{report['model']} ({report['backend']}, {report['precision']}, {report['variant']}, "
             f"N={report['views']}, {report['height']}x{report['width']}) vs PyTorch fp32"]
    lines.append(f"{'input':8s} {'output':12s} {'max_abs':>12s} {'max_rel':>12s}")
    for label, outputs in report["results"].items():
        for name, v in outputs.items():
            lines.append(f"{label:8s} {name:12s} {v['max_abs']:12.3e} {v['max_rel']:12.3e}"
                         + ("" if v["finite"] else "  NON-FINITE"))
    lines.append(f"worst max_rel {report['worst_max_rel']:.3e} (tolerance {report['rtol']:.0e}): "
                 f"{'PASS' if report['passed'] else 'FAIL'}")
    return os.linesep.join(lines)
