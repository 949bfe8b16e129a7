"""The benches' verdict lines: a figure, its ratio, the target, ``ok`` or ``MISSED``."""

from __future__ import annotations

from bench.redispatch import verdict_line


def test_the_redispatch_bench_judges_its_ratio_against_the_target() -> None:
    met = verdict_line("pg+redis", redispatch=1.2, plain=1.0, objects=10_000)
    missed = verdict_line("sqlite+filesystem", redispatch=1.6, plain=1.0, objects=10_000)

    assert met == (
        "redispatch  pg+redis           10,000 objects: re-dispatch 1.20 s / plain 1.00 s = 1.20x  target <= 1.50x  ok"
    )
    assert missed.endswith("= 1.60x  target <= 1.50x  MISSED")
