#!/usr/bin/env bash
# Run the whole test suite in .venv. pytest exit status 5 ("no tests collected") counts as failure.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PYTHONUNBUFFERED=1
"${DA3_VENV:-$repo/.venv}/bin/python" -m pytest test "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "run_tests: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
