#!/usr/bin/env bash
# Export a DA3 checkpoint for one window: ONNX + check, and a TensorRT engine where TensorRT exists.
# usage: export/export_all.sh CHECKPOINT N H W OUTDIR [extra da3-export onnx flags...]
set -euo pipefail
if [ "$#" -lt 5 ]; then
  echo "usage: $0 CHECKPOINT N H W OUTDIR [--ref-view ...] [--pose-conditioned] [--with-rays]" >&2
  exit 2
fi
ckpt=$1; n=$2; h=$3; w=$4; out=$5; shift 5
mkdir -p "$out"
stem="$out/$(basename "${ckpt%/}" | tr '[:upper:]/' '[:lower:]_')_n${n}_${h}x${w}"
da3-export onnx --checkpoint "$ckpt" --views "$n" --height "$h" --width "$w" --output "$stem.onnx" "$@"
da3-export check --model "$stem.onnx" --checkpoint "$ckpt"
if python -c "import tensorrt" 2>/dev/null || python -c "import tensorrt_rtx" 2>/dev/null; then
  mkdir -p "$out/engine"
  da3-export engine --onnx "$stem.onnx" --timing-cache "$out/engine/timing.cache" \
                    --output "$out/engine/$(basename "$stem").engine"
else
  echo "TensorRT not importable: skipped the engine build" >&2
fi
