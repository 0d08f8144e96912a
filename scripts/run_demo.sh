#!/usr/bin/env bash
# The main job (README command 1): the end-to-end demo on the embedded default input.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
exec "${DA3_VENV:-$repo/.venv}/bin/da3-demo" --output "${DA3_DEMO_OUTPUT:-$repo/out/demo}" "$@"
