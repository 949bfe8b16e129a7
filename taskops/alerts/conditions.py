"""What each condition measures, per task name, with bounded queries.

Window conditions read only the dispatches enqueued in the rule's window
(the ``enqueued_at`` index); backlog and stuck work read only unfinished rows
(the ``state`` index). Each condition is one grouped query (lag p95 off
PostgreSQL: plus one or two per task name), plus one query for a few sample
dispatches of the task names it holds for.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable
from typing import Any

import attrs
from django.db.models import Count, Max, Min, Q, QuerySet

from taskops.models import AlertRule, Condition, Dispatch, Drift, State
from taskops.stats import percentiles_by

#: Sample dispatches kept on an alert.
SAMPLES = 5
#: Work that waits to run.
WAITING = [State.PENDING, State.RECEIVED, State.RETRY]
JUDGED = [Drift.UNCHANGED, Drift.CHANGED, Drift.MISSING]
FINISHED = [State.SUCCESS, State.FAILURE]


@attrs.frozen
class Finding:
    """The condition holds for one task name: the measured value and a few dispatches that show it."""

    value: float
    samples: list[int]


def measure(rule: AlertRule, now: dt.datetime) -> dict[str, Finding]:
    """Task name -> finding, for every task name (matching the rule) the condition holds for."""
    values, where = MEASURES[Condition(rule.condition)](rule, now)
    holding = {name: value for name, value in values.items() if fnmatch.fnmatchcase(name, rule.task_pattern)}
    if not holding:
        return {}
    samples: dict[str, list[int]] = {name: [] for name in holding}
    rows = where.filter(task_name__in=list(holding)).order_by("-enqueued_at").values_list("task_name", "pk")
    for name, pk in rows[: SAMPLES * len(holding) * 4]:
        if len(samples[name]) < SAMPLES:
            samples[name].append(pk)
    return {name: Finding(value, samples[name]) for name, value in holding.items()}


Measured = tuple[dict[str, float], QuerySet[Dispatch]]


def in_window(rule: AlertRule, now: dt.datetime) -> QuerySet[Dispatch]:
    return Dispatch.objects.filter(enqueued_at__gte=now - rule.window)


def grouped(queryset: QuerySet[Dispatch], **aggregates: Any) -> list[dict[str, Any]]:
    """One row per task name: ``{"task_name": ..., <aggregate>: ...}``."""
    rows: Any = queryset.values("task_name").order_by("task_name").annotate(**aggregates)
    return [dict(row) for row in rows]


def lag_p95(rule: AlertRule, now: dt.datetime) -> Measured:
    started = in_window(rule, now).filter(lag__isnull=False)
    p95s = percentiles_by(started, "task_name", "lag", 0.95, min_count=rule.min_count)
    values = {name: p95.total_seconds() for name, p95 in p95s.items() if p95 and p95.total_seconds() > rule.threshold}
    return values, started.filter(lag__gt=dt.timedelta(seconds=rule.threshold))


def lag_any(rule: AlertRule, now: dt.datetime) -> Measured:
    late = in_window(rule, now).filter(lag__gt=dt.timedelta(seconds=rule.threshold))
    rows = grouped(late, n=Count("pk"), worst=Max("lag"))
    return {r["task_name"]: r["worst"].total_seconds() for r in rows if r["n"] >= rule.min_count}, late


def rate(rule: AlertRule, queryset: QuerySet[Dispatch], part: Q) -> dict[str, float]:
    """Per task: ``part`` as a percentage of the queryset, where that is over the threshold."""
    rows = grouped(queryset, n=Count("pk"), hits=Count("pk", filter=part))
    return {
        r["task_name"]: 100.0 * r["hits"] / r["n"]
        for r in rows
        if r["n"] >= rule.min_count and r["hits"] and 100.0 * r["hits"] / r["n"] > rule.threshold
    }


def drift_rate(rule: AlertRule, now: dt.datetime) -> Measured:
    # Only dispatches that had objects and were judged: the others had nothing that could drift.
    checked = in_window(rule, now).filter(ref_count__gt=0, drift__in=JUDGED)
    stale = Q(drift__in=[Drift.CHANGED, Drift.MISSING])
    return rate(rule, checked, stale), checked.filter(stale)


def failure_rate(rule: AlertRule, now: dt.datetime) -> Measured:
    finished = in_window(rule, now).filter(state__in=FINISHED)
    return rate(rule, finished, Q(state=State.FAILURE)), finished.filter(state=State.FAILURE)


def counted(rule: AlertRule, queryset: QuerySet[Dispatch]) -> Measured:
    rows = grouped(queryset, n=Count("pk"))
    return {r["task_name"]: float(r["n"]) for r in rows if r["n"] >= max(1, rule.min_count)}, queryset


def any_missing(rule: AlertRule, now: dt.datetime) -> Measured:
    return counted(rule, in_window(rule, now).filter(drift=Drift.MISSING))


def any_race(rule: AlertRule, now: dt.datetime) -> Measured:
    return counted(rule, in_window(rule, now).filter(likely_race=True))


def backlog_age(rule: AlertRule, now: dt.datetime) -> Measured:
    """Due work (no ETA, or an ETA passed) waiting longer than the threshold; value: the oldest wait."""
    since = now - dt.timedelta(seconds=rule.threshold)
    due = Q(eta__isnull=True) | Q(eta__lte=now)
    waiting = Dispatch.objects.filter(due, state__in=WAITING, enqueued_at__lt=since)
    rows = grouped(waiting, n=Count("pk"), oldest=Min("enqueued_at"))
    return {r["task_name"]: (now - r["oldest"]).total_seconds() for r in rows if r["n"] >= rule.min_count}, waiting


def stuck(rule: AlertRule, now: dt.datetime) -> Measured:
    since = now - dt.timedelta(seconds=rule.threshold)
    running = Dispatch.objects.filter(state=State.STARTED, started_at__lt=since)
    rows = grouped(running, n=Count("pk"), oldest=Min("started_at"))
    return {r["task_name"]: (now - r["oldest"]).total_seconds() for r in rows if r["n"] >= rule.min_count}, running


MEASURES: dict[Condition, Callable[[AlertRule, dt.datetime], Measured]] = {
    Condition.LAG_P95: lag_p95,
    Condition.LAG_ANY: lag_any,
    Condition.DRIFT_RATE: drift_rate,
    Condition.ANY_MISSING: any_missing,
    Condition.ANY_RACE: any_race,
    Condition.BACKLOG_AGE: backlog_age,
    Condition.STUCK: stuck,
    Condition.FAILURE_RATE: failure_rate,
}
#: Conditions measured in seconds (the others: percent, or rows).
IN_SECONDS = frozenset({Condition.LAG_P95, Condition.LAG_ANY, Condition.BACKLOG_AGE, Condition.STUCK})
IN_PERCENT = frozenset({Condition.DRIFT_RATE, Condition.FAILURE_RATE})
