"""Label selectors in kubectl's text form: "app=web,tier!=db,zone in (a,b),!legacy,gpu"."""

from __future__ import annotations

import re

from schemas.meta import (
    LabelSelector,
    LabelSelectorOperator,
    LabelSelectorRequirement,
    check_labels,
)

_SET_RE = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")


class SelectorError(ValueError):
    """A label selector that does not parse; the message quotes the bad term."""


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_selector(text: str | None) -> LabelSelector | None:
    """Return the LabelSelector of kubectl selector text (None for empty text).

    Raises SelectorError naming the term that does not parse.
    """
    if text is None or not text.strip():
        return None
    labels: dict[str, str] = {}
    expressions: list[LabelSelectorRequirement] = []
    for term in _split_terms(text):
        eq = _EQ_RE.match(term)
        if eq:
            key, op, value = eq.groups()
            if op == "!=":
                expressions.append(
                    LabelSelectorRequirement(
                        key=key, operator=LabelSelectorOperator.NOT_IN, values=[value]
                    )
                )
            else:
                labels[key] = value
            continue
        match = _SET_RE.match(term)
        if not match or (match.group(1) and match.group(3)):
            raise SelectorError(f"cannot parse selector term {term.strip()!r}")
        negated, key, op, values = match.groups()
        if op:
            operator = LabelSelectorOperator.IN if op == "in" else LabelSelectorOperator.NOT_IN
            items = [v.strip() for v in values.split(",") if v.strip()]
            expressions.append(LabelSelectorRequirement(key=key, operator=operator, values=items))
        else:
            operator = (
                LabelSelectorOperator.DOES_NOT_EXIST if negated else LabelSelectorOperator.EXISTS
            )
            expressions.append(LabelSelectorRequirement(key=key, operator=operator))
    try:
        check_labels(labels)
    except ValueError as exc:
        raise SelectorError(str(exc)) from exc
    return LabelSelector(match_labels=labels, match_expressions=expressions)
