#!/usr/bin/env bash
# Runs the whole test suite; exit 5 from pytest (no tests collected) is a failure of
# its own kind, reported as such rather than passed off as success.
set -uo pipefail
cd "$(dirname "$0")/.."

python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
