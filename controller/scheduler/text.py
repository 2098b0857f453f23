"""Human forms of scheduler quantities, as they appear in verdicts and messages."""

from __future__ import annotations

from collections.abc import Sequence

_UNITS = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def _trim(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def human_bytes(value: float) -> str:
    """Return a byte count as "16Gi", "1.5Gi", "512Mi" (one decimal at most)."""
    for suffix, factor in _UNITS:
        if abs(value) >= factor:
            return f"{_trim(value / factor)}{suffix}"
    return f"{int(value)}B"


def human_cpu(milli: float) -> str:
    """Return millicores as CPUs: 2000 -> "2", 1500 -> "1.5", 250 -> "250m"."""
    if abs(milli) < 1000 and milli % 1000:
        return f"{int(milli)}m"
    return _trim(milli / 1000)


def cpus_phrase(milli: float) -> str:
    """Return "1 CPU", "2 CPUs", "500m CPU"."""
    text = human_cpu(milli)
    return f"{text} CPU" if text in ("1",) or text.endswith("m") else f"{text} CPUs"


def join_names(names: Sequence[str], limit: int = 3) -> str:
    """Return "a, b, c" or "a, b, c and 4 more"."""
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def plural(count: int, word: str) -> str:
    """Return "1 host", "3 hosts"."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
