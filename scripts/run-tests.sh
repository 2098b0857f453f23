#!/usr/bin/env bash
# Runs the whole test suite; exit 5 from pytest (no tests collected) is a failure of
# its own kind, reported as such rather than passed off as success.
set -uo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL-backed tests use the local server; start it if it was stopped.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
