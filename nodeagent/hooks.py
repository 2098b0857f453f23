"""Host-local hook scripts, as in VDSM: `<hooks-dir>/<hook point>/<script>`.

Hook points are `before_vm_start`, `after_vm_start`, `before_vm_destroy`,
`after_vm_destroy`, `before_vm_migrate_source` and `after_vm_migrate_source`
(STYLE.md: `before_<object>_<verb>`). Destroy hooks run for every stop of a
running domain (graceful shutdown or destroy), but not for a self-fence, which
must not wait on scripts.

Which scripts run: a VM opts in. A script's hook name is its file name without an
ordering prefix (`NN_`) and without an extension: `10_add_description.sh` is
`add_description`. It runs for a VM only when that name is in `DomainSpec.hooks`
(stored in the domain's metadata), so what a VM gets is declared in its manifest,
never implied by what a host happens to have installed. Listing a hook that is
installed at no hook point on this host fails the start (`hook_failed`), rather
than starting the VM without it.

Protocol: scripts of a point run in file-name order, each with the domain XML on
stdin and CORRAL_HOOK_POINT / CORRAL_VM_NAME / CORRAL_VM_UUID in the environment.
A before-hook may print a rewritten domain XML on stdout (empty stdout keeps the
XML); the next script gets the result. A nonzero exit or a timeout fails the verb
with `hook_failed` and the script's stderr. After-hooks run the same way, but
their failures are logged and never undo the operation.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nodeagent.domxml import domain_identity
from nodeagent.errors import AgentFailure

log = logging.getLogger(__name__)

HOOK_POINTS = (
    "before_vm_start",
    "after_vm_start",
    "before_vm_destroy",
    "after_vm_destroy",
    "before_vm_migrate_source",
    "after_vm_migrate_source",
)

_ORDER_PREFIX = re.compile(r"^\d+[_-]")


def hook_name(filename: str) -> str:
    """Return the hook name of a script file: no ordering prefix, no extension."""
    stem = _ORDER_PREFIX.sub("", filename)
    return stem.split(".", 1)[0]


@dataclass(frozen=True)
class HookScript:
    """One executable hook script."""

    point: str
    name: str
    path: Path


class Hooks:
    """The hook scripts under one directory, run with a per-script timeout (seconds)."""

    def __init__(self, hooks_dir: str | Path | None, timeout_s: float = 30.0) -> None:
        self.hooks_dir = Path(hooks_dir) if hooks_dir else None
        self.timeout_s = timeout_s

    def scripts(self, point: str) -> list[HookScript]:
        """Return the executable scripts of `point`, in file-name order."""
        if self.hooks_dir is None:
            return []
        directory = self.hooks_dir / point
        if not directory.is_dir():
            return []
        return [
            HookScript(point, hook_name(path.name), path)
            for path in sorted(directory.iterdir())
            if path.is_file() and os.access(path, os.X_OK)
        ]

    def available(self) -> dict[str, list[str]]:
        """Return the installed hook names by hook point (points without scripts omitted)."""
        found = {point: sorted({s.name for s in self.scripts(point)}) for point in HOOK_POINTS}
        return {point: names for point, names in found.items() if names}

    def check_installed(self, vm: str, wanted: list[str]) -> None:
        """Raise hook_failed if the VM asks for a hook installed at no point on this host."""
        installed = {name for names in self.available().values() for name in names}
        missing = sorted(set(wanted) - installed)
        if missing:
            raise AgentFailure(
                "hook_failed",
                f"VM {vm!r} asks for hooks not installed on this host: {', '.join(missing)}",
            )

    def run_before(self, point: str, xml: str, vm: str, uuid: str, wanted: list[str]) -> str:
        """Run the VM's before-hooks of `point`; return the (possibly rewritten) domain XML.

        Raises AgentFailure(hook_failed) on a nonzero exit, a timeout, or output
        that is not this domain's XML; the verb then does nothing.
        """
        for script in self.scripts(point):
            if script.name not in wanted:
                continue
            out = self._run(script, xml, vm, uuid)
            if out.strip():
                name, out_uuid = domain_identity(out)
                if name != vm or (out_uuid is not None and out_uuid != uuid):
                    raise AgentFailure(
                        "hook_failed",
                        f"hook {point}/{script.path.name} printed XML that is not domain {vm!r}",
                    )
                xml = out
        return xml

    def run_after(self, point: str, xml: str, vm: str, uuid: str, wanted: list[str]) -> None:
        """Run the VM's after-hooks of `point`; failures are logged, never raised."""
        for script in self.scripts(point):
            if script.name not in wanted:
                continue
            try:
                self._run(script, xml, vm, uuid)
            except AgentFailure as exc:
                log.warning("after-hook failed (operation kept): %s", exc)

    def _run(self, script: HookScript, xml: str, vm: str, uuid: str) -> str:
        env = dict(
            os.environ, CORRAL_HOOK_POINT=script.point, CORRAL_VM_NAME=vm, CORRAL_VM_UUID=uuid
        )
        label = f"{script.point}/{script.path.name}"
        try:
            # A new session lets a timeout kill the script's children too, which would
            # otherwise keep the pipes open and the verb waiting.
            proc = subprocess.Popen(
                [str(script.path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise AgentFailure("hook_failed", f"hook {label} could not run: {exc}") from exc
        try:
            stdout, stderr = proc.communicate(xml, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AgentFailure(
                "hook_failed", f"hook {label} timed out after {self.timeout_s:g} s", retryable=True
            ) from exc
        if proc.returncode != 0:
            raise AgentFailure(
                "hook_failed",
                f"hook {label} exited {proc.returncode}: {stderr.strip()[-2000:]}",
            )
        log.info("hook %s ran for %s", label, vm)
        return stdout
