"""The layer rules hold on the real tree, and each contract catches an import that breaks it.

The contracts are pyproject.toml's [tool.importlinter], checked by `lint-imports` (which
scripts/run-tests.sh runs before pytest). A broken contract is shown on a copy of the real
packages with one deliberately violating module added, checked against the same contracts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
ROOT_PACKAGES = ("schemas", "agentapi", "arbiter", "controller", "nodeagent", "corral_sdk")
VIOLATION = "_layer_violation"
"""The name of the module added to a copied package to break one contract."""


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Return `lint-imports` run on the contracts and packages under `cwd`."""
    program = shutil.which("lint-imports")
    if program is None:
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    # A wide terminal keeps rich from wrapping a long import chain in the middle.
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run(
        [program, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_real_tree_keeps_every_contract() -> None:
    run = lint_imports(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^Contracts: \d+ kept, 0 broken\.$", run.stdout, re.M), run.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a copy of the root packages and pyproject.toml (the contracts)."""
    root = tmp_path_factory.mktemp("layers")
    for package in ROOT_PACKAGES:
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def violating(tree_copy: Path) -> Iterator[Callable[[str, str], Path]]:
    """Yield add(package, statement): it writes `statement` as the module
    package._layer_violation of the copy and returns the copy; the modules go afterwards."""
    added: list[Path] = []

    def add(package: str, statement: str) -> Path:
        path = tree_copy.joinpath(*package.split("."), f"{VIOLATION}.py")
        path.write_text(
            f'"""Breaks a layer rule on purpose (tests/unit/test_layers.py)."""\n\n{statement}\n'
        )
        added.append(path)
        return tree_copy

    yield add
    for path in added:
        path.unlink()


@pytest.mark.parametrize(
    ("package", "statement", "imported", "contract"),
    [
        pytest.param(
            "controller.plan",
            "from controller.store import Store",
            "controller.store",
            "The pure core",
            id="plan-imports-store",
        ),
        pytest.param(
            "controller.scheduler",
            "from controller.agents import AgentClient",
            "controller.agents",
            "The pure core",
            id="scheduler-imports-agent-client",
        ),
        pytest.param(
            "nodeagent",
            "import controller.loop",
            "controller.loop",
            "The node agent imports no controller",
            id="agent-imports-controller",
        ),
        pytest.param(
            "controller.store",
            "from controller.history import tables",
            "controller.history.tables",
            "The store imports no history",
            id="store-imports-history",
        ),
        pytest.param(
            "controller.history",
            "from controller.api.errors import ApiError",
            "controller.api.errors",
            "History imports no API",
            id="history-imports-api",
        ),
        pytest.param(
            "controller.kube",
            "from controller.store import Store",
            "controller.store",
            "Sources of desired state",
            id="kube-imports-store-beyond-the-operator",
        ),
        pytest.param(
            "schemas",
            "import controller.manifests",
            "controller.manifests",
            "schemas imports nothing",
            id="schemas-import-controller",
        ),
        pytest.param(
            "agentapi",
            "import nodeagent.errors",
            "nodeagent.errors",
            "agentapi imports nothing",
            id="agentapi-imports-agent",
        ),
        pytest.param(
            "arbiter",
            "import schemas.meta",
            "schemas.meta",
            "arbiter imports nothing",
            id="arbiter-imports-schemas",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    violating: Callable[[str, str], Path],
    package: str,
    statement: str,
    imported: str,
    contract: str,
) -> None:
    tree = violating(package, statement)
    run = lint_imports(tree)
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"^Contracts: \d+ kept, 1 broken\.$", run.stdout, re.M), run.stdout
    broken = run.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, run.stdout
    assert f"{package}.{VIOLATION} -> {imported} (l.3)" in broken, run.stdout
