"""Each condition fires over its threshold and stays quiet just under it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from taskops.alerts.conditions import measure
from taskops.models import AlertRule, Condition, Drift, State
from tests.factories import make_dispatch
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db

TASK = "tests.testapp.tasks.touch_book"
NOW = timezone.now()
SECOND = dt.timedelta(seconds=1)


def rule(condition: Condition, threshold: float = 0, **fields: Any) -> AlertRule:
    fields.setdefault("window", dt.timedelta(minutes=15))
    return AlertRule.objects.create(
        name=str(condition), task_pattern="tests.testapp.tasks.*", condition=condition, threshold=threshold, **fields
    )


def lagged(seconds: float) -> Any:
    make_dispatch(
        Book.objects.create(title="b"), task_name=TASK, lag=dt.timedelta(seconds=seconds), enqueued_at=NOW - 60 * SECOND
    )


def drifted(drift: Drift, count: int = 1) -> Any:
    for _ in range(count):
        make_dispatch(Book.objects.create(title="b"), task_name=TASK, drift=drift, enqueued_at=NOW - 60 * SECOND)


def finished(state: State, count: int = 1) -> Any:
    for _ in range(count):
        make_dispatch(task_name=TASK, state=state, enqueued_at=NOW - 60 * SECOND)


def waiting(seconds: float, eta: dt.datetime | None = None) -> Any:
    make_dispatch(task_name=TASK, state=State.PENDING, enqueued_at=NOW - seconds * SECOND, lag=None, eta=eta)


def running_for(seconds: float) -> Any:
    make_dispatch(task_name=TASK, state=State.STARTED, enqueued_at=NOW - (seconds + 1) * SECOND, lag=SECOND)


#: (condition, threshold, data over it, data just under it).
CASES: list[tuple[Condition, float, Callable[[], Any], Callable[[], Any]]] = [
    (Condition.LAG_P95, 10, lambda: [lagged(11) for _ in range(3)], lambda: [lagged(9.5) for _ in range(3)]),
    (Condition.LAG_ANY, 10, lambda: (lagged(1), lagged(10.5)), lambda: (lagged(1), lagged(10))),
    (
        Condition.DRIFT_RATE,
        50,
        lambda: (drifted(Drift.CHANGED, 2), drifted(Drift.UNCHANGED, 1)),
        lambda: (drifted(Drift.CHANGED, 1), drifted(Drift.UNCHANGED, 1)),
    ),
    (Condition.ANY_MISSING, 0, lambda: drifted(Drift.MISSING), lambda: drifted(Drift.CHANGED)),
    (
        Condition.ANY_RACE,
        0,
        lambda: make_dispatch(Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING, likely_race=True),
        lambda: drifted(Drift.MISSING),
    ),
    (Condition.BACKLOG_AGE, 30, lambda: waiting(31), lambda: (waiting(29), waiting(3600, eta=NOW + 60 * SECOND))),
    (Condition.STUCK, 30, lambda: running_for(40), lambda: running_for(20)),
    (
        Condition.FAILURE_RATE,
        40,
        lambda: (finished(State.FAILURE, 1), finished(State.SUCCESS, 1)),
        lambda: (finished(State.FAILURE, 2), finished(State.SUCCESS, 3)),
    ),
]


@pytest.mark.parametrize(("condition", "threshold", "over", "under"), CASES, ids=[str(case[0]) for case in CASES])
def test_fires_over_the_threshold(condition: Condition, threshold: float, over: Any, under: Any) -> None:
    over()
    findings = measure(rule(condition, threshold), NOW)
    assert set(findings) == {TASK}
    assert findings[TASK].samples


@pytest.mark.parametrize(("condition", "threshold", "over", "under"), CASES, ids=[str(case[0]) for case in CASES])
def test_quiet_just_under_it(condition: Condition, threshold: float, over: Any, under: Any) -> None:
    under()
    assert measure(rule(condition, threshold), NOW) == {}


def test_the_pattern_chooses_the_tasks() -> None:
    drifted(Drift.MISSING)
    assert (
        measure(AlertRule.objects.create(name="x", task_pattern="other.*", condition=Condition.ANY_MISSING), NOW) == {}
    )


def test_a_rate_needs_its_minimum_count() -> None:
    drifted(Drift.CHANGED, 2)
    assert measure(rule(Condition.DRIFT_RATE, 50, min_count=3), NOW) == {}
    drifted(Drift.CHANGED, 1)
    assert set(measure(rule(Condition.DRIFT_RATE, 50, min_count=3), NOW)) == {TASK}


def test_dispatches_without_objects_are_not_checked_for_drift() -> None:
    make_dispatch(task_name=TASK)  # no objects: nothing could drift
    drifted(Drift.CHANGED, 1)
    finding = measure(rule(Condition.DRIFT_RATE, 50), NOW)[TASK]
    assert finding.value == 100.0


def test_outside_the_window_does_not_count() -> None:
    make_dispatch(
        Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING, enqueued_at=NOW - 20 * 60 * SECOND
    )
    assert measure(rule(Condition.ANY_MISSING, window=dt.timedelta(minutes=15)), NOW) == {}


def test_lag_p95_is_each_tasks_own_and_needs_the_minimum_count() -> None:
    watched = rule(Condition.LAG_P95, 5, min_count=3)
    others = {"tests.testapp.tasks.few": (30, 40), "tests.testapp.tasks.quick": (1, 1, 1)}
    for name, lags in {TASK: (1, 2, 10, 20), **others}.items():
        for seconds in lags:
            make_dispatch(task_name=name, lag=seconds * SECOND, enqueued_at=NOW - 60 * SECOND)

    found = measure(watched, NOW)

    # percentile_cont over 1, 2, 10, 20: 10 + 0.85 * (20 - 10); "few" has 2 dispatches, "quick" is quick.
    assert {name: finding.value for name, finding in found.items()} == {TASK: pytest.approx(18.5)}
