"""Alerts on a million dispatches: one evaluation round of 20 rules, and a metrics scrape.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskops python -m bench.alerts

PostgreSQL only, on a database of its own beside the configured one
(``_alerts_bench`` added to the name, or ``TASKOPS_BENCH_DATABASE_URL``),
filled once with the million dispatches of ``bench.million``. Time is judged
as of the newest dispatch (when the rows were generated), so that every
window holds what it held then, however long ago that was.

(a) One round of ``taskops.alerts.evaluate`` over 20 rules, every condition
    at least twice, windows from 15 minutes to a day, notifying the dashboard
    only; the first round opens the alerts, the measured ones count them.
(b) A scrape of the metrics view (``/metrics/``, bearer token), the cache
    emptied before each so that every scrape computes the figures, with the
    default window (``TASKOPS["METRICS_WINDOW"]``, 5 minutes) and with a day.

Medians of ``--runs`` rounds or scrapes after one to warm up; one line per
figure with its target. Its rules and alerts are removed before and after.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

from bench.databases import NOT_APPLICABLE
from bench.million import newest_enqueue, open_database, parse_options, row_estimate

#: (condition, task pattern, threshold, window in minutes)
RULES: list[tuple[str, str, float, int]] = [
    ("lag_p95", "demo.tasks.*", 5, 15),
    ("lag_p95", "*", 2, 60),
    ("lag_p95", "*", 1, 1440),
    ("lag_p95", "demo.tasks.rebuild_summary", 1, 1440),
    ("lag_any", "*", 60, 15),
    ("lag_any", "demo.tasks.notify_*", 30, 60),
    ("drift_rate", "*", 5, 15),
    ("drift_rate", "demo.tasks.*", 2, 60),
    ("drift_rate", "*", 10, 1440),
    ("any_missing", "*", 0, 15),
    ("any_missing", "demo.tasks.flag_comment", 0, 60),
    ("any_race", "*", 0, 15),
    ("any_race", "*", 0, 1440),
    ("backlog_age", "*", 60, 15),
    ("backlog_age", "demo.tasks.moderate_answer", 300, 15),
    ("stuck", "*", 300, 15),
    ("stuck", "*", 3600, 15),
    ("failure_rate", "*", 1, 15),
    ("failure_rate", "*", 5, 60),
    ("failure_rate", "demo.tasks.count_words", 1, 1440),
]
#: Median targets, in milliseconds.
ROUND_TARGET = 1000.0
SCRAPE_TARGET = 300.0
TOKEN = "bench-metrics-token-0123456789"


def make_rules() -> None:
    from taskops.models import AlertRule, Channel

    remove_rules()
    AlertRule.objects.bulk_create(
        AlertRule(
            name=f"bench {index:02d} {condition}",
            task_pattern=pattern,
            condition=condition,
            threshold=threshold,
            window=dt.timedelta(minutes=minutes),
            channels=[Channel.DASHBOARD],
        )
        for index, (condition, pattern, threshold, minutes) in enumerate(RULES)
    )


def remove_rules() -> None:
    from taskops.models import AlertRule

    AlertRule.objects.filter(name__startswith="bench ").delete()  # their alerts go with them


@contextmanager
def as_of(moment: dt.datetime) -> Iterator[None]:
    """``timezone.now()`` runs on from ``moment``: windows hold what they held then."""
    from django.utils import timezone

    offset = moment - timezone.now()
    real_now = timezone.now
    with mock.patch.object(timezone, "now", side_effect=lambda: real_now() + offset):
        yield


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    """Milliseconds per call, after one call to warm up."""
    action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def report(name: str, timings: list[float], target: float) -> bool:
    median = statistics.median(timings)
    ok = median <= target
    print(
        f"{name:<44} median {median:7.1f} ms  min {min(timings):7.1f}  max {max(timings):7.1f}"
        f"  target <= {target:.0f} ms  {'ok' if ok else 'MISSED'}",
        flush=True,
    )
    return ok


def scrape(client: Any) -> Callable[[], None]:
    from taskops.alerts.metrics import CACHE_KEY, metrics_cache

    def once() -> None:
        metrics_cache().delete(CACHE_KEY)  # every scrape computes the figures
        response = client.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.status_code
        assert b"taskops_dispatches" in response.content

    return once


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options("alerts", __doc__, "rounds and scrapes", argv)
    if not open_database("alerts", options):
        return NOT_APPLICABLE
    from django.test import Client, override_settings

    from taskops.alerts import evaluate
    from taskops.models import Alert

    runs = max(options.runs, 5)
    moment = newest_enqueue() + dt.timedelta(seconds=1)
    print(f"\n{row_estimate():,} dispatches (estimate), as of {moment:%Y-%m-%d %H:%M:%S}, median of {runs}\n")
    make_rules()
    ok = True
    try:
        with as_of(moment):
            rounds = timed(lambda: evaluate(), runs)
            opened = Alert.objects.filter(rule__name__startswith="bench ").count()
            ok &= report(f"evaluation round, {len(RULES)} rules ({opened} alerts)", rounds, ROUND_TARGET)
            client = Client(HTTP_HOST="localhost")
            for label, window in (("5 min window (default)", None), ("1 day window", 86_400)):
                settings = {"METRICS_TOKEN": TOKEN} | ({"METRICS_WINDOW": window} if window else {})
                with override_settings(TASKOPS=settings):
                    ok &= report(f"metrics scrape, {label}", timed(scrape(client), runs), SCRAPE_TARGET)
    finally:
        remove_rules()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
