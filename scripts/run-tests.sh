#!/usr/bin/env bash
# Checks the import contracts, then runs the whole test suite; exit 5 from pytest (no tests
# collected) is a failure of its own kind, reported as such rather than passed off as success.
set -uo pipefail
cd "$(dirname "$0")/.."

# The layer rules ([tool.importlinter] in pyproject.toml) go first: a back-edge fails the run
# with lint-imports' report of the offending import chain, before any test runs.
if ! layers=$(lint-imports --no-cache 2>&1); then
  printf '%s\n' "$layers" >&2
  echo "run-tests: the import contracts are broken (lint-imports, above)" >&2
  exit 1
fi
printf '%s\n' "$layers" | grep -E '^Contracts: ' || true

python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
