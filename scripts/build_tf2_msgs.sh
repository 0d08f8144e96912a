#!/usr/bin/env bash
# Build the stand-in tf2_msgs interface package (tools/tf2_msgs_interface) straight into a venv
# made of PyPI ROS 2 wheels, so that `$VENV/bin/python -c 'import tf2_msgs.msg'` works without
# sourcing anything. Two workarounds for the wheels (see shared ENVIRONMENT.md):
#   - AMENT_PREFIX_PATH must point at the venv (where the wheels put share/<pkg>);
#   - the wheels' *Export.cmake files name include dirs of the wheel build machine
#     (/opt/python/cp311-cp311/...): rewrite them to this interpreter's and numpy's include dirs.
set -euo pipefail
venv="$(cd "$1" && pwd)"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$venv/bin/python"

py_inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$py" -c 'import numpy; print(numpy.get_include())')"
find "$venv/share" -name '*.cmake' -print0 | xargs -0 grep -l '/opt/python/cp311-cp311' 2>/dev/null | \
  while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g" "$f"
  done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp -r "$repo/tools/tf2_msgs_interface" "$work/src/tf2_msgs"
rm -f "$work/src/tf2_msgs/COLCON_IGNORE"

(
  cd "$work"
  export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PATH="$venv/bin:$PATH"
  "$venv/bin/colcon" build --merge-install --install-base "$venv" \
    --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
    --event-handlers console_direct- >"$work/build.log" 2>&1 || {
      cat "$work/build.log"; echo "tf2_msgs generation failed" >&2; exit 1; }
)
"$py" -c "import tf2_msgs.msg; print('[bootstrap] tf2_msgs generated:', tf2_msgs.msg.TFMessage.__module__)"
