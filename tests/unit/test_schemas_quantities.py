"""Quantities, CPU amounts and names: what parses, to what, and what is refused and why."""

from __future__ import annotations

import pytest

from schemas.meta import (
    check_dns_label,
    format_bytes,
    format_millicpus,
    parse_bytes,
    parse_cpu_count,
    parse_millicpus,
    quote,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4Gi", 4 * 2**30),
        ("512Mi", 512 * 2**20),
        ("1Ki", 1024),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1G", 10**9),
        ("1k", 1000),
        ("1K", 1000),
        ("3M", 3 * 10**6),
        ("1.5Gi", 3 * 2**29),
        ("0.5Ki", 512),
        ("1024", 1024),
        (1024, 1024),
        (0, 0),
        (2.0, 2),
    ],
    ids=str,
)
def test_parse_bytes(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20 GB", 'expected a quantity like "20Gi" or "512Mi", got "20 GB"'),
        ("20 Gi", 'expected a quantity like "20Gi" or "512Mi", got "20 Gi"'),
        ("20GiB", 'expected a quantity like "20Gi" or "512Mi", got "20GiB"'),
        ("-1Gi", 'expected a quantity like "20Gi" or "512Mi", got "-1Gi"'),
        ("", 'expected a quantity like "20Gi" or "512Mi", got ""'),
        ("1.5", 'quantity "1.5" is not a whole number of bytes'),
        ("0.3Ki", 'quantity "0.3Ki" is not a whole number of bytes'),
        (-5, "expected a non-negative size, got -5"),
        (True, 'expected a quantity like "20Gi", got true'),
        (1.5, 'expected a quantity like "20Gi", got 1.5'),
        (None, 'expected a quantity like "20Gi", got null'),
    ],
    ids=repr,
)
def test_parse_bytes_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_bytes(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4 * 2**30, "4Gi"), (1536 * 2**20, "1536Mi"), (2**50, "1Pi"), (1000, "1000"), (0, "0")],
)
def test_format_bytes_is_the_shortest_exact_form(value: int, expected: str) -> None:
    assert format_bytes(value) == expected
    assert parse_bytes(expected) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2000), (1.5, 1500), ("2", 2000), ("1.5", 1500), ("500m", 500), ("0.001", 1), (0, 0)],
    ids=repr,
)
def test_parse_millicpus(value: object, expected: int) -> None:
    assert parse_millicpus(value) == expected


@pytest.mark.parametrize(
    "value", ["1e3", "inf", "-1", "1.2345", " 2", "2 m", True, None, float("nan"), -1, 0.0001]
)
def test_parse_millicpus_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        parse_millicpus(value)


@pytest.mark.parametrize(("value", "expected"), [(2000, 2), (1500, "1500m"), (0, 0)])
def test_format_millicpus(value: int, expected: object) -> None:
    assert format_millicpus(value) == expected
    assert parse_millicpus(expected) == value


@pytest.mark.parametrize(("value", "expected"), [(2, 2), ("4", 4), (2.0, 2)], ids=repr)
def test_parse_cpu_count(value: object, expected: int) -> None:
    assert parse_cpu_count(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "expected at least 1 CPU, got 0"),
        (1.5, "expected a whole number of CPUs like 2, got 1.5"),
        ("two", 'expected a whole number of CPUs like 2, got "two"'),
        (True, "expected a whole number of CPUs, got true"),
    ],
    ids=repr,
)
def test_parse_cpu_count_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cpu_count(value)
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["a", "web-1", "0", "a" * 63, "x-y-z", "1abc"])
def test_dns_label_accepts(name: str) -> None:
    assert check_dns_label(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Web", "is not a DNS-1123 label"),
        ("web_1", "is not a DNS-1123 label"),
        ("-web", "is not a DNS-1123 label"),
        ("web-", "is not a DNS-1123 label"),
        ("web.1", "is not a DNS-1123 label"),
        ("", "is not a DNS-1123 label"),
        ("a" * 64, "is 64 characters long, the limit is 63"),
    ],
)
def test_dns_label_refuses(name: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        check_dns_label(name)
    assert str(info.value).startswith(f"name {quote(name)} {reason}")


@pytest.mark.parametrize(
    ("value", "shown"), [("20 GB", '"20 GB"'), ('say "hi"', '"say \\"hi\\""'), (3, "3"),
                         (None, "null"), (False, "false")],
)  # fmt: skip
def test_quote_writes_values_as_manifests_do(value: object, shown: str) -> None:
    assert quote(value) == shown
