"""The lab's double-run check: a real second copy, not a migration's switch-over between reads."""

from __future__ import annotations

import pytest

from controller.lab.fleet import DomainSampler, Sample


def sample(at: float, **running: set[str]) -> Sample:
    return Sample(at=at, wall=at, running={h: frozenset(v) for h, v in running.items()})


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param(
            [sample(0, a={"vm"}), sample(1, a={"vm"}, b={"vm"}), sample(2, b={"vm"})],
            [],
            id="switch-over-seen-in-one-sample",
        ),
        pytest.param(
            [sample(0, a={"vm"}), sample(1, a={"vm"}, b={"vm"}), sample(2, a={"vm"}, b={"vm"})],
            [(2, "vm", ["a", "b"])],
            id="second-copy-that-persists",
        ),
        pytest.param([sample(0, a={"vm"}, b={"x"})], [], id="one-copy-each"),
    ],
)
def test_double_runs(samples, expected):
    sampler = DomainSampler(lab=None, samples=samples)  # type: ignore[arg-type]
    assert sampler.double_runs() == expected
