"""The controller term guard: calls under a term older than the newest seen are refused.

Each mutating call carries the controller's term (its fencing token from leader
election, header X-Corral-Epoch). A deposed leader that wakes up mid-plan would
otherwise still define and start VMs here after the new leader moved them. The newest
term is kept in `state_file` so that a restarted agent still refuses the old leader.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from nodeagent.errors import AgentFailure

log = logging.getLogger(__name__)


def load_term(path: Path | None) -> int:
    """Return the term stored at `path` (0 when none or unreadable)."""
    if path is None:
        return 0
    try:
        return max(0, int(path.read_text().strip() or 0))
    except (OSError, ValueError):
        return 0


class TermGuard:
    """Admits calls whose term is at least the newest seen; remembers newer terms."""

    def __init__(self, state_file: Path | None = None) -> None:
        self._state_file = state_file
        self._term = load_term(state_file)
        self._lock = threading.Lock()

    @property
    def term(self) -> int:
        return self._term

    def admit(self, term: int) -> None:
        """Raise conflict when `term` is older than the newest seen; else record it."""
        with self._lock:
            if term < self._term:
                raise AgentFailure(
                    "conflict",
                    f"controller term {term} is older than term {self._term} already seen by "
                    "this host: refused (a newer controller leads)",
                )
            if term > self._term:
                self._term = term
                self._save()
        if term > 0:
            log.debug("admitted a call under controller term %d", term)

    def _save(self) -> None:
        if self._state_file is None:
            return
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_name(f".{self._state_file.name}.{os.getpid()}")
        tmp.write_text(str(self._term))
        os.replace(tmp, self._state_file)
