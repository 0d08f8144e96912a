"""`da3-export onnx|engine|check`: export DA3 to ONNX, build TensorRT engines, check them against
PyTorch. See INTERFACES.md for the flags; every failure exits non-zero with a one-line reason on
stderr (``da3-export: error: ...``)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Tuple

from da3_ros.artifact.network_size import DEFAULT_LONG_SIDE, network_size_for_camera, parse_camera_size
from da3_ros.artifact.precision import PRECISIONS
from da3_ros.artifact.ref_view import REF_VIEW_STRATEGIES
from da3_ros.export.onnx_export import ONNX_PRECISIONS


def _positive(value: str) -> int:
    v = int(value)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="da3-export", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{onnx,engine,check}")

    p = sub.add_parser("onnx", help="checkpoint -> FILE.onnx + FILE.json (fixed N, H, W)",
                       description="Export a DA3 checkpoint to ONNX for a fixed window of N views at H x W. "
                                   "Input: uint8 RGB (1, N, H, W, 3); normalisation happens in the graph.")
    p.add_argument("--checkpoint", required=True,
                   help="HF-layout directory, .safetensors/.pth file, or HF repo id (e.g. depth-anything/DA3-SMALL)")
    p.add_argument("--variant", default=None, help="variant name when the checkpoint has no config.json")
    p.add_argument("--views", type=_positive, required=True, help="N, views per window")
    p.add_argument("--height", type=_positive, default=None, help="H, multiple of 14 (or give --camera-size)")
    p.add_argument("--width", type=_positive, default=None, help="W, multiple of 14 (or give --camera-size)")
    p.add_argument("--camera-size", default=None, metavar="WxH",
                   help="instead of --height/--width: the camera's image size, e.g. 640x480; the network size is "
                        "the official DA3 rule's (aspect kept, sides multiples of 14, long side --long-side): "
                        "640x480 -> H 378, W 504")
    p.add_argument("--long-side", type=_positive, default=None, metavar="L",
                   help=f"with --camera-size: the network's long side before rounding (default {DEFAULT_LONG_SIDE})")
    p.add_argument("--ref-view", default="saddle_balanced",
                   help=f"{' | '.join(REF_VIEW_STRATEGIES)} | INDEX (default saddle_balanced)")
    p.add_argument("--pose-conditioned", action="store_true",
                   help="add the pose_encoding (1, N, 9) input (camera encoder)")
    p.add_argument("--with-rays", action="store_true", help="also output ray (1,N,h',w',6) and ray_conf")
    p.add_argument("--with-descriptor", action="store_true",
                   help="also output descriptor (1,N,D): each view's place-recognition descriptor (loop closure); "
                        "with --split it is an output of the per-view encoder")
    p.add_argument("--split", action="store_true",
                   help="write a split artefact: FILE.encoder.onnx (per-view encoder: normalisation, patch embedding, "
                        "blocks before alt_start) and FILE.onnx (window graph on the N views' tokens), one FILE.json; "
                        "backends then encode each view once while it stays in the window")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 18, default 18)")
    p.add_argument("--precision", choices=ONNX_PRECISIONS, default="fp32",
                   help="fp32 (default; every backend); fp16: mixed-precision graph for fp16 engines with "
                        "TensorRT-RTX (strongly typed); int8_dynamic: backbone block weights in int8 (range "
                        "+-64, exact on every x86 CPU, VNNI or not) for ONNX Runtime on CPUs (faster, less "
                        "accurate: run da3-export check; TensorRT refuses it)")
    p.add_argument("--output", required=True, help="FILE.onnx (FILE.json is written beside it)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")

    e = sub.add_parser("engine", help="FILE.onnx -> TensorRT FILE.engine + FILE.json",
                       description="Build a TensorRT engine from an exported ONNX graph (TensorRT 10, or "
                                   "TensorRT-RTX when only tensorrt_rtx is installed).")
    e.add_argument("--onnx", required=True, help="exported FILE.onnx (with its sidecar)")
    e.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="fp16 (default with TensorRT 10), bf16, fp32 (the only choice with TensorRT-RTX)")
    e.add_argument("--workspace-gb", type=float, default=4.0, help="workspace memory-pool limit (GB, default 4)")
    e.add_argument("--timing-cache", default="", help="persistent timing-cache file (read and updated)")
    e.add_argument("--compute-capability", action="append", default=None, metavar="SMxx",
                   help="TensorRT-RTX target(s), e.g. SM86 (repeatable; default: this GPU, else SM86)")
    e.add_argument("--no-fp32-layers", action="store_true",
                   help="do not pin LayerNorm/softmax/exp to FP32 in fp16/bf16 builds")
    e.add_argument("--output", required=True, help="FILE.engine (FILE.json is written beside it)")

    c = sub.add_parser("check", help="compare FILE.onnx|FILE.engine with the PyTorch reference",
                       description="Run an exported model and the PyTorch reference (fp32, CPU) on a random "
                                   "and a real window; print max abs/rel differences per output.")
    c.add_argument("--model", required=True, help="FILE.onnx (ONNX Runtime) or FILE.engine (TensorRT)")
    c.add_argument("--checkpoint", required=True, help="the checkpoint the model was exported from")
    c.add_argument("--variant", default=None, help="variant when the checkpoint has no config.json")
    c.add_argument("--images", nargs="*", default=None,
                   help="image/video files or directories (default: ../shared/data when present)")
    c.add_argument("--providers", nargs="*", default=None, help="ONNX Runtime providers (default CPU)")
    c.add_argument("--threads", type=int, default=0, help="CPU threads for both runtimes (0 = default)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--rtol", type=float, default=None, help="pass threshold on max_rel (default by precision)")
    c.add_argument("--json", default="", help="also write the report to this JSON file")
    return parser


def resolve_network_size(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Tuple[int, int]:
    """``onnx``'s network ``(height, width)``: ``--height/--width``, or the official rule's for ``--camera-size``.

    Args:
        parser: the parser (its ``error`` exits 2 with the usage and the reason).
        args: the parsed ``onnx`` arguments.

    Returns:
        ``(height, width)`` in pixels.
    """
    explicit = args.height is not None or args.width is not None
    if args.camera_size is not None:
        if explicit:
            parser.error("--camera-size conflicts with --height/--width: give the camera size or the network size, "
                         "not both")
        try:
            camera_w, camera_h = parse_camera_size(args.camera_size)
            return network_size_for_camera(camera_w, camera_h, args.long_side or DEFAULT_LONG_SIDE)
        except ValueError as exc:
            parser.error(f"--camera-size: {exc}")
    if args.long_side is not None:
        parser.error("--long-side needs --camera-size (with --height/--width the network size is given)")
    if not explicit:
        parser.error("give --height and --width, or --camera-size WxH")
    if args.height is None or args.width is None:
        parser.error("give both --height and --width")
    return args.height, args.width


def _run(args: argparse.Namespace) -> int:
    if args.command == "onnx":
        from da3_ros.export.onnx_export import export_onnx

        if not args.quiet and args.camera_size is not None:
            print(f"camera {args.camera_size} -> network H x W = {args.height} x {args.width}")
        export_onnx(args.checkpoint, args.output, views=args.views, height=args.height, width=args.width,
                    variant=args.variant, ref_view=args.ref_view, pose_conditioned=args.pose_conditioned,
                    with_rays=args.with_rays, with_descriptor=args.with_descriptor,
                    opset=args.opset, verbose=not args.quiet,
                    precision=args.precision, split=args.split)
        return 0
    if args.command == "engine":
        from da3_ros.export.tensorrt_build import EngineBuildOptions, build_engine

        sidecar = build_engine(args.onnx, args.output, EngineBuildOptions(
            precision=args.precision, workspace_gb=args.workspace_gb, timing_cache_path=args.timing_cache,
            keep_fp32=not args.no_fp32_layers, compute_capabilities=args.compute_capability))
        print(f"wrote {args.output} ({sidecar.tensorrt_module} {sidecar.tensorrt_version}, {sidecar.precision}, "
              f"GPU {sidecar.gpu_name or '-'} / {sidecar.compute_capability})")
        return 0
    if args.command == "check":
        from da3_ros.backends.artifact_check import format_report, run_check

        report = run_check(args.model, args.checkpoint, images=args.images, seed=args.seed,
                           providers=args.providers, num_threads=args.threads, variant=args.variant)
        if args.rtol is not None:
            report["rtol"] = args.rtol
            report["passed"] = bool(report["worst_max_rel"] <= args.rtol)
        print(format_report(report))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        if not report["passed"]:
            print(f"da3-export: error: {args.model} differs from PyTorch by max_rel "
                  f"{report['worst_max_rel']:.3e} > {report['rtol']:.0e}", file=sys.stderr)
            return 1
        return 0
    raise AssertionError(args.command)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "onnx":
        args.height, args.width = resolve_network_size(parser, args)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("da3-export: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, the reason
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"da3-export: error: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
