"""Pure: count HA restarts, migrations and failures per subject and period. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from controller.history.model import Counts, Period, Subject
from controller.history.rollup import period_start

HA_RESTART = "HARestart"
WARNING = "Warning"
SUBJECT_OF_KIND = {"Host": Subject.HOST, "VirtualMachine": Subject.VM}


@dataclass(frozen=True)
class Occurrence:
    """Something countable that happened to a host or VM at `at`, `times` times."""

    kind: str
    name: str
    at: datetime
    what: str
    times: int = 1


def occurrences_of_event(
    kind: str, name: str, type_: str, reason: str, at: datetime, count: int
) -> Occurrence | None:
    """Return the event as an Occurrence ("ha_restart" / "failure"), or None if not counted."""
    if reason == HA_RESTART:
        return Occurrence(kind, name, at, "ha_restart", count)
    if type_ == WARNING:
        return Occurrence(kind, name, at, "failure", count)
    return None


def count_occurrences(
    occurrences: Iterable[Occurrence], period: Period
) -> dict[tuple[Subject, str, datetime], Counts]:
    """Return Counts per (subject, name, period start); kinds other than Host/VM are skipped."""
    tally: dict[tuple[Subject, str, datetime], dict[str, int]] = defaultdict(
        lambda: {"ha_restart": 0, "migration": 0, "failure": 0}
    )
    for occ in occurrences:
        subject = SUBJECT_OF_KIND.get(occ.kind)
        if subject is None:
            continue
        tally[(subject, occ.name, period_start(occ.at, period))][occ.what] += occ.times
    return {
        key: Counts(ha_restarts=t["ha_restart"], migrations=t["migration"], failures=t["failure"])
        for key, t in tally.items()
    }
