"""Heartbeats read from serial logs: parsing, first-seen stamps, truncation, gaps, double runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.lab.heartbeat import (
    Heartbeat,
    SerialLogReader,
    concurrent_runs,
    largest_gap,
    numbering_continues,
    parse_heartbeats,
    runs,
)


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def beats(*rows: tuple[float, int, str]) -> list[Heartbeat]:
    return [Heartbeat(seen_at, number, float(number), source) for seen_at, number, source in rows]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", [], id="empty"),
        pytest.param(b"HB 1 3.02\nHB 2 4.06\n", [(1, 3.02), (2, 4.06)], id="plain"),
        pytest.param(b"[    2.6] Run /init\nGUEST-UP\nHB 1 3.02\n", [(1, 3.02)], id="boot-noise"),
        pytest.param(b"/ # \x1b[6nHB 2 4.06\n", [(2, 4.06)], id="after-shell-prompt"),
        pytest.param(b"HB x 1.0\nHB 3\n", [], id="malformed"),
    ],
)
def test_parse_heartbeats(data: bytes, expected: list[tuple[int, float]]) -> None:
    assert parse_heartbeats(data) == expected


def test_reader_stamps_first_sighting_and_waits_for_complete_lines(tmp_path: Path) -> None:
    clock = FakeClock()
    log = tmp_path / "a.serial"
    reader = SerialLogReader({"host-1": log}, clock=clock)
    assert reader.poll() == []  # a missing file reads as empty
    log.write_bytes(b"GUEST-UP\nHB 1 3.00\nHB 2 4.0")
    assert reader.poll() == [Heartbeat(100.0, 1, 3.0, "host-1")]
    assert reader.guest_up == {"host-1": 100.0}
    clock.now = 101.0
    with log.open("ab") as handle:
        handle.write(b"1\nHB 3 5.01\n")
    assert reader.poll() == [
        Heartbeat(101.0, 2, 4.01, "host-1"),
        Heartbeat(101.0, 3, 5.01, "host-1"),
    ]
    clock.now = 102.0
    assert reader.poll() == []
    assert [b.number for b in reader.beats] == [1, 2, 3]


def test_reader_rereads_a_truncated_file_without_duplicates(tmp_path: Path) -> None:
    clock = FakeClock()
    log = tmp_path / "b.serial"
    log.write_bytes(b"boot noise that is long enough\nHB 1 1.0\nHB 2 2.0\n")
    reader = SerialLogReader({"host-2": log}, clock=clock)
    reader.poll()
    log.write_bytes(b"HB 2 2.0\nHB 3 3.0\n")  # QEMU truncated it, then the guest printed on
    clock.now = 101.0
    assert reader.poll() == [Heartbeat(101.0, 3, 3.0, "host-2")]


def test_reader_follows_several_hosts(tmp_path: Path) -> None:
    clock = FakeClock()
    reader = SerialLogReader(clock=clock)
    reader.add("host-1", tmp_path / "1")
    reader.add("host-2", tmp_path / "2")
    (tmp_path / "1").write_bytes(b"HB 7 7.0\n")
    (tmp_path / "2").write_bytes(b"HB 8 8.0\n")
    assert {(b.source, b.number) for b in reader.poll()} == {("host-1", 7), ("host-2", 8)}


def test_wait_new_times_out_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "c.serial"
    log.write_bytes(b"Kernel panic - not syncing\n")
    reader = SerialLogReader({"host-1": log})
    with pytest.raises(TimeoutError, match="Kernel panic"):
        reader.wait_new(1, timeout_s=0.1)


@pytest.mark.parametrize(
    ("rows", "gap"),
    [
        pytest.param([], 0.0, id="none"),
        pytest.param([(1.0, 1, "a")], 0.0, id="one"),
        pytest.param([(1.0, 1, "a"), (2.0, 2, "a"), (4.5, 3, "b")], 2.5, id="across-hosts"),
    ],
)
def test_largest_gap(rows: list[tuple[float, int, str]], gap: float) -> None:
    assert largest_gap(beats(*rows)) == pytest.approx(gap)


@pytest.mark.parametrize(
    ("rows", "continues"),
    [
        pytest.param([(1.0, 4, "a"), (2.0, 5, "a"), (3.0, 6, "b")], True, id="migrated"),
        pytest.param([(1.0, 4, "a"), (2.0, 5, "a"), (3.0, 1, "b")], False, id="restarted"),
    ],
)
def test_numbering_continues(rows: list[tuple[float, int, str]], continues: bool) -> None:
    assert numbering_continues(beats(*rows)) is continues


def test_a_live_migration_is_one_handover_not_a_double_run() -> None:
    handover = beats((1.0, 1, "a"), (2.0, 2, "a"), (3.2, 3, "b"), (4.2, 4, "b"))
    assert concurrent_runs(handover) == []
    assert [(r.source, r.first_number, r.last_number) for r in runs(handover)] == [
        ("a", 1, 2),
        ("b", 3, 4),
    ]


def test_a_guest_started_twice_is_a_double_run() -> None:
    twice = beats((1.0, 10, "a"), (2.0, 11, "a"), (2.5, 1, "b"), (3.0, 12, "a"), (3.5, 2, "b"))
    [(first, second)] = concurrent_runs(twice)
    assert (first.source, second.source) == ("a", "b")


def test_migrating_back_later_is_no_double_run() -> None:
    back_and_forth = beats((1.0, 1, "a"), (2.0, 2, "a"), (3.0, 3, "b"), (9.0, 9, "b"))
    back_and_forth += beats((10.0, 10, "a"), (11.0, 11, "a"))
    assert concurrent_runs(back_and_forth, max_gap_s=3.0) == []
