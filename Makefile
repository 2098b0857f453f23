# The two commands: `make demo` runs Corral on this machine, `make test` runs every test.
# Both install what they need first (Debian 12, root): see scripts/setup-host.sh.

PYTHON ?= python3
STATE  ?= .state/demo

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup-host.sh
	sh scripts/setup-postgres.sh
	sh scripts/setup-etcd.sh
	sh scripts/setup-browser.sh
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[agent,test]'

demo: setup
	corral lab guest
	corral up examples/demo --state-dir $(STATE)

test: setup
	bash scripts/run-tests.sh

lint:
	ruff check .
	ruff format --check .

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(PYTHON) $$b || exit 1; done

clean:
	rm -rf .state build *.egg-info
