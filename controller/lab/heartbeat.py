"""Heartbeats of the tiny guest, read from serial log files: is it running, did it pause, twice?

The guest prints `HB <n> <uptime>` once a second (see controller.lab.guest). A `SerialLogReader`
follows one or more log files (one per host the guest may run on) and stamps each heartbeat
with the reader's clock when it is first seen. The analysis functions are pure:
- `largest_gap`: the longest silence between consecutive heartbeats, e.g. across a migration;
- `numbering_continues`: the counter never went back, so the guest was never restarted;
- `concurrent_runs`: two hosts printing heartbeats over the same span: the guest runs twice.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_RE = re.compile(rb"HB (\d+) (\d+\.\d+)")
GUEST_UP = b"GUEST-UP"
DEFAULT_RUN_GAP_S = 3.0
"""A heartbeat source silent for longer than this has stopped; a later beat starts a new run."""


@dataclass(frozen=True, order=True)
class Heartbeat:
    """One heartbeat line: its number, the guest's uptime, when and where the reader saw it."""

    seen_at: float
    number: int
    uptime_s: float
    source: str


@dataclass(frozen=True)
class Run:
    """A stretch of heartbeats from one source without a silence longer than the run gap."""

    source: str
    first_seen: float
    last_seen: float
    first_number: int
    last_number: int


def parse_heartbeats(data: bytes) -> list[tuple[int, float]]:
    """Returns (number, uptime_s) of each heartbeat in the complete lines of `data`.

    Other output (kernel messages, shell prompts, terminal escapes) is ignored.
    """
    return [
        (int(m.group(1)), float(m.group(2)))
        for line in data.splitlines()
        if (m := HEARTBEAT_RE.search(line))
    ]


def largest_gap(beats: Iterable[Heartbeat]) -> float:
    """Returns the longest time in seconds between consecutively seen heartbeats (0.0 if < 2)."""
    times = sorted(beat.seen_at for beat in beats)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def numbering_continues(beats: Iterable[Heartbeat]) -> bool:
    """Returns True if, in the order seen, every heartbeat number is above the one before.

    A guest restarted from scratch (not migrated) starts again at 1, which makes this False.
    """
    numbers = [beat.number for beat in sorted(beats)]
    return all(b > a for a, b in itertools.pairwise(numbers))


def runs(beats: Iterable[Heartbeat], max_gap_s: float = DEFAULT_RUN_GAP_S) -> list[Run]:
    """Returns the runs of each source, ordered by first_seen."""
    by_source: dict[str, list[Heartbeat]] = {}
    for beat in sorted(beats):
        by_source.setdefault(beat.source, []).append(beat)
    found: list[Run] = []
    for source, seq in by_source.items():
        start = prev = seq[0]
        for beat in seq[1:]:
            if beat.seen_at - prev.seen_at > max_gap_s:
                found.append(Run(source, start.seen_at, prev.seen_at, start.number, prev.number))
                start = beat
            prev = beat
        found.append(Run(source, start.seen_at, prev.seen_at, start.number, prev.number))
    return sorted(found, key=lambda run: (run.first_seen, run.source))


def concurrent_runs(
    beats: Iterable[Heartbeat], max_gap_s: float = DEFAULT_RUN_GAP_S
) -> list[tuple[Run, Run]]:
    """Returns each pair of runs from different sources whose spans overlap: the guest was
    running in two places at once. A live migration hands over without overlap.
    """
    all_runs = runs(beats, max_gap_s)
    return [
        (a, b)
        for i, a in enumerate(all_runs)
        for b in all_runs[i + 1 :]
        if a.source != b.source and b.first_seen < a.last_seen
    ]


class SerialLogReader:
    """Follows serial log files and collects each heartbeat once, stamped when first seen.

    Missing files are read as empty; a file that shrank (QEMU truncates the serial file when a
    migration destination opens it) is read again from its start. Thread-safe.
    """

    def __init__(
        self, sources: dict[str, Path] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._seen: set[tuple[str, int]] = set()
        self._beats: list[Heartbeat] = []
        self._guest_up: dict[str, float] = {}
        for source, path in (sources or {}).items():
            self.add(source, path)

    def add(self, source: str, path: Path) -> None:
        """Starts following `path` under the name `source` (e.g. the host name)."""
        with self._lock:
            self._paths[source] = Path(path)
            self._offsets.setdefault(source, 0)
            self._partial.setdefault(source, b"")

    @property
    def beats(self) -> list[Heartbeat]:
        """Returns every heartbeat seen so far, in the order seen."""
        with self._lock:
            return list(self._beats)

    @property
    def guest_up(self) -> dict[str, float]:
        """Returns, per source, when `GUEST-UP` was first seen there."""
        with self._lock:
            return dict(self._guest_up)

    def _read_new(self, source: str) -> bytes:
        path = self._paths[source]
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, 2)
                if size < self._offsets[source]:
                    self._offsets[source] = 0
                    self._partial[source] = b""
                handle.seek(self._offsets[source])
                data = handle.read()
        except FileNotFoundError:
            return b""
        self._offsets[source] += len(data)
        return data

    def poll(self) -> list[Heartbeat]:
        """Reads what was appended to every file since the last poll; returns new heartbeats."""
        with self._lock:
            now = self._clock()
            new: list[Heartbeat] = []
            for source in self._paths:
                data = self._partial[source] + self._read_new(source)
                complete, _, rest = data.rpartition(b"\n")
                self._partial[source] = rest
                if GUEST_UP in complete and source not in self._guest_up:
                    self._guest_up[source] = now
                for number, uptime in parse_heartbeats(complete):
                    if (source, number) not in self._seen:
                        self._seen.add((source, number))
                        new.append(Heartbeat(now, number, uptime, source))
            self._beats.extend(new)
            return new

    def wait_for(
        self,
        predicate: Callable[[list[Heartbeat]], bool],
        timeout_s: float,
        interval_s: float = 0.05,
    ) -> list[Heartbeat]:
        """Polls until predicate(all beats) holds; returns the beats.

        Raises TimeoutError naming the files and their last lines when it does not hold in time.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            beats = self.beats
            if predicate(beats):
                return beats
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"heartbeats not as expected after {timeout_s} s: {self.tails()}"
                )
            time.sleep(interval_s)

    def wait_new(self, count: int, timeout_s: float, source: str | None = None) -> list[Heartbeat]:
        """Waits for `count` heartbeats after those already seen (from `source`, if given);
        returns all beats. Raises TimeoutError like wait_for.
        """
        before = len([b for b in self.beats if source in (None, b.source)])
        return self.wait_for(
            lambda beats: len([b for b in beats if source in (None, b.source)]) >= before + count,
            timeout_s,
        )

    def tails(self, lines: int = 5) -> dict[str, list[str]]:
        """Returns the last lines of each followed file, for error messages."""
        out = {}
        for source, path in self._paths.items():
            try:
                text = path.read_bytes().decode(errors="replace")
            except FileNotFoundError:
                text = "<missing>"
            out[source] = text.splitlines()[-lines:]
        return out


class HeartbeatWatcher:
    """Polls a SerialLogReader from a background thread, so that first-seen times are precise
    to `interval_s` while the caller blocks (e.g. in a migration call). Use as a context manager.
    """

    def __init__(self, reader: SerialLogReader, interval_s: float = 0.02) -> None:
        self.reader = reader
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat-watcher", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.reader.poll()

    def __enter__(self) -> HeartbeatWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.reader.poll()
