#!/usr/bin/env bash
# Run test files on an emulated AVX2-only x86 CPU: QEMU user mode with -cpu Haswell (AVX2 + FMA, no
# AVX-512, no VNNI), so ONNX Runtime's MLAS, PyTorch and numpy dispatch to their AVX2 kernels (e.g.
# the VPMADDUBSW int8 kernels, whose int16 pair sums saturate). A manual check for numeric
# tolerances that must hold on every x86 host; not run by CI (QEMU is slow and not a dependency).
#
# Usage: scripts/check_avx2_host.sh test/test_export_int8.py [more test files / pytest args]
# Env:   PY (default .venv/bin/python), QEMU_CPU_MODEL (default Haswell), QEMU (default qemu-x86_64).
# Needs: apt-get install -y qemu-user. Only the pytest process is emulated: subprocesses the tests
#        start exec natively (no binfmt), so test files that spawn da3-export/da3_node check less.
# Cost:  20-30x slower than native (test_export_int8.py: 5 min); use the reduced-model tests, not DA3-Small.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
QEMU=${QEMU:-qemu-x86_64}
CPU_MODEL=${QEMU_CPU_MODEL:-Haswell}
if [ $# -eq 0 ]; then
    echo "usage: $0 TEST_FILE... [pytest args]" >&2
    exit 2
fi
if ! command -v "$QEMU" >/dev/null; then
    echo "$QEMU not found: apt-get install -y qemu-user" >&2
    exit 2
fi
# The ros-wheels bootstrap (.pth) re-execs python to set LD_LIBRARY_PATH; that exec would leave the
# emulator. Compute the path natively once and mark the bootstrap as done.
LD_LIBRARY_PATH=$("$PY" -c 'import os; print(os.environ.get("LD_LIBRARY_PATH", ""))')
export LD_LIBRARY_PATH _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export PYTHONPATH=${PYTHONPATH:-$ROOT}
emulated() { "$QEMU" -cpu "$CPU_MODEL" "$PY" "$@" 2> >(grep -v "TCG doesn't support requested feature" >&2); }
# What the emulated process sees (the host's /proc/cpuinfo would still list avx512/vnni).
emulated - <<'PY'
import sys
import numpy as np
import torch
try:
    from numpy._core._multiarray_umath import __cpu_features__ as feats
except ImportError:  # numpy < 2
    from numpy.core._multiarray_umath import __cpu_features__ as feats
from da3_ros.export.int8_quantization import ort_u8s8_saturates
cap = torch.backends.cpu.get_cpu_capability()
print(f"[check_avx2_host] emulated CPU: torch {cap}, numpy AVX2={feats['AVX2']} AVX512F={feats['AVX512F']} "
      f"AVX512VNNI={feats['AVX512VNNI']}, ORT u8s8 saturates={ort_u8s8_saturates()}", flush=True)
if feats["AVX512F"] or not feats["AVX2"]:
    sys.exit("[check_avx2_host] the emulated CPU is not AVX2-only; refusing to report")
PY
cd "$ROOT"
emulated -m pytest -p no:cacheprovider -q "$@"
