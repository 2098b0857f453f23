"""How the loop words counts and revisions in its events and conditions."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """Return "1 error" or "3 errors"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def short(revision: str | None) -> str:
    """Return a revision shortened for messages (12 characters of a SHA)."""
    if not revision:
        return "none"
    return revision[:19] if revision.startswith("sha256:") else revision[:12]
