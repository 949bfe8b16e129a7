"""An alert's life in-process: open once, count, acknowledge, resolve once; every channel told twice at most."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskops.alerts import acknowledge, evaluate
from taskops.alerts.conditions import Finding
from taskops.alerts.evaluate import observe
from taskops.alerts.webhook import SIGNATURE_HEADER, post
from taskops.models import Alert, AlertRule, Channel, Condition, Drift, State
from taskops.signals import alert_opened, alert_resolved
from tests.alerts.webhook_server import webhook_receiver
from tests.factories import make_dispatch
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db

TASK = "tests.testapp.tasks.touch_book"
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def told() -> Any:
    events: list[tuple[str, int]] = []

    def opened(alert: Alert, **kwargs: Any) -> None:
        events.append(("opened", alert.pk))

    def resolved(alert: Alert, **kwargs: Any) -> None:
        events.append(("resolved", alert.pk))

    alert_opened.connect(opened, dispatch_uid="tests.opened")
    alert_resolved.connect(resolved, dispatch_uid="tests.resolved")
    yield events
    alert_opened.disconnect(dispatch_uid="tests.opened")
    alert_resolved.disconnect(dispatch_uid="tests.resolved")


@override_settings(ADMINS=[("Ops", "ops@example.com")])
def test_open_count_acknowledge_resolve(told: list[tuple[str, int]], caplog: pytest.LogCaptureFixture) -> None:
    rule = AlertRule.objects.create(
        name="missing rows",
        task_pattern="tests.testapp.tasks.*",
        condition=Condition.ANY_MISSING,
        channels=[Channel.EMAIL, Channel.LOG, Channel.SIGNAL, Channel.DASHBOARD],
        window=dt.timedelta(minutes=5),
        cooldown=dt.timedelta(minutes=2),
    )
    now = timezone.now()
    make_dispatch(
        Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING, enqueued_at=now - dt.timedelta(seconds=10)
    )

    with caplog.at_level(logging.WARNING, logger="taskops.alerts"):
        first = evaluate(now)
    (alert,) = first.opened
    assert (alert.subject, alert.status, alert.count) == (TASK, Alert.Status.OPEN, 1)
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert told == [("opened", alert.pk)]
    assert "missing rows: tests.testapp.tasks.touch_book" in caplog.text

    again = evaluate(now + dt.timedelta(seconds=30))  # still holds: counted, nothing sent
    alert.refresh_from_db()
    assert (again.opened, alert.count) == ([], 2)
    assert len(mail.outbox) == 1
    assert len(told) == 1

    acknowledge(alert, User.objects.create_user("op"))
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED
    assert alert.acknowledged_by is not None
    assert alert.acknowledged_by.username == "op"

    clear_from = now + dt.timedelta(minutes=6)  # the missing row is out of the window
    assert evaluate(clear_from).resolved == []  # clear, cooling down
    assert evaluate(clear_from + dt.timedelta(minutes=1)).resolved == []
    (resolved,) = evaluate(clear_from + dt.timedelta(minutes=2)).resolved
    assert resolved.pk == alert.pk
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert len(mail.outbox) == 2
    assert told == [("opened", alert.pk), ("resolved", alert.pk)]
    assert [(n["channel"], n["event"], n["ok"]) for n in alert.notifications] == [
        (c, e, True) for e in ("opened", "resolved") for c in ("email", "log", "signal", "dashboard")
    ]

    # The condition comes back: a new incident, kept apart from the resolved one.
    make_dispatch(
        Book.objects.create(title="c"),
        task_name=TASK,
        drift=Drift.MISSING,
        enqueued_at=clear_from + dt.timedelta(minutes=3),
    )
    (reopened,) = evaluate(clear_from + dt.timedelta(minutes=3, seconds=5)).opened
    assert reopened.pk != alert.pk
    assert Alert.objects.filter(rule=rule).count() == 2


def test_a_broken_channel_is_noted_and_does_not_silence_the_others(told: list[tuple[str, int]]) -> None:
    AlertRule.objects.create(
        name="r", task_pattern="*", condition=Condition.ANY_MISSING, channels=[Channel.EMAIL, Channel.SIGNAL]
    )
    make_dispatch(Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING)
    with override_settings(ADMINS=[]):
        (alert,) = evaluate().opened
    alert.refresh_from_db()
    assert [(n["channel"], n["ok"]) for n in alert.notifications] == [("email", False), ("signal", True)]
    assert "no recipients" in alert.notifications[0]["detail"]
    assert told == [("opened", alert.pk)]


def test_a_webhook_post_is_signed() -> None:
    with webhook_receiver() as receiver:
        body = json.dumps({"event": "opened"}).encode()
        assert post(receiver.url, body, "s3cret") == 200
    ((headers, received),) = receiver.requests
    assert received == body
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)


def test_a_webhook_error_status_raises() -> None:
    with webhook_receiver() as receiver:
        receiver.status = 500
        with pytest.raises(OSError, match="500"):
            post(receiver.url, b"{}", "s")


def test_acknowledging_an_alert_resolved_meanwhile_leaves_it_resolved() -> None:
    rule = AlertRule.objects.create(name="r", task_pattern="*", condition=Condition.ANY_MISSING)
    make_dispatch(Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING)
    (alert,) = evaluate().opened  # as an operator's page loaded it: open
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED, resolved_at=timezone.now())
    Alert.objects.create(rule=rule, subject=TASK, first_seen=timezone.now(), last_seen=timezone.now())  # reopened

    assert acknowledge(alert, User.objects.create_user("op")) is False

    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == (Alert.Status.RESOLVED, None, None)


def test_an_alert_names_its_task_not_its_rule() -> None:
    rule = AlertRule.objects.create(name="A rule some users may not see", task_pattern="*", condition=Condition.STUCK)
    alert = Alert.objects.create(rule=rule, subject=TASK, first_seen=timezone.now(), last_seen=timezone.now())

    assert str(alert) == f"Alert #{alert.pk} on {TASK}"


def missing_row(at: dt.datetime, task_name: str = TASK) -> None:
    make_dispatch(Book.objects.create(title="b"), task_name=task_name, drift=Drift.MISSING, enqueued_at=at)


def test_the_alerts_of_a_disabled_rule_resolve_in_the_next_round(told: list[tuple[str, int]]) -> None:
    rule = AlertRule.objects.create(
        name="r", task_pattern="*", condition=Condition.ANY_MISSING, channels=[Channel.SIGNAL], cooldown=HOUR
    )
    now = timezone.now()
    missing_row(now)
    (alert,) = evaluate(now).opened
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)  # the condition still holds: nothing judges it

    later = evaluate(now + dt.timedelta(seconds=60))

    assert [resolved.pk for resolved in later.resolved] == [alert.pk]
    assert later.open_count == 0
    assert Alert.objects.get(pk=alert.pk).status == Alert.Status.RESOLVED
    assert told == [("opened", alert.pk), ("resolved", alert.pk)]
    assert evaluate(now + dt.timedelta(seconds=120)).resolved == []  # told once


def test_an_alert_whose_task_the_edited_pattern_no_longer_matches_resolves_at_once() -> None:
    rule = AlertRule.objects.create(name="r", task_pattern="tests.*", condition=Condition.ANY_MISSING, cooldown=HOUR)
    now = timezone.now()
    missing_row(now)
    missing_row(now, task_name="tests.testapp.tasks.other")
    assert len(evaluate(now).opened) == 2
    AlertRule.objects.filter(pk=rule.pk).update(task_pattern="tests.testapp.tasks.other")

    later = evaluate(now + dt.timedelta(seconds=60))

    assert [alert.subject for alert in later.resolved] == [TASK]  # no cool-down: the rule no longer watches it
    assert list(Alert.objects.exclude(status=Alert.Status.RESOLVED).values_list("subject", "count")) == [
        ("tests.testapp.tasks.other", 2)
    ]


def test_counts_from_two_processes_at_once_are_both_kept() -> None:
    """A round and a worker's start may each hold the alert as it was, and count on it at the same moment."""
    rule = AlertRule.objects.create(name="r", task_pattern="*", condition=Condition.ANY_MISSING)
    alert = Alert.objects.create(rule=rule, subject=TASK, first_seen=timezone.now(), last_seen=timezone.now())
    as_one_saw_it, as_the_other_saw_it = Alert.objects.get(pk=alert.pk), Alert.objects.get(pk=alert.pk)

    observe(rule, TASK, Finding(1.0, []), timezone.now(), as_one_saw_it)
    observe(rule, TASK, Finding(1.0, []), timezone.now(), as_the_other_saw_it)

    assert Alert.objects.get(pk=alert.pk).count == 3
    assert as_the_other_saw_it.count == 3  # refreshed


def test_a_count_on_an_alert_resolved_meanwhile_opens_a_new_one() -> None:
    rule = AlertRule.objects.create(name="r", task_pattern="*", condition=Condition.ANY_MISSING)
    alert = Alert.objects.create(rule=rule, subject=TASK, first_seen=timezone.now(), last_seen=timezone.now())
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED, resolved_at=timezone.now())

    opened = observe(rule, TASK, Finding(1.0, []), timezone.now(), alert)

    assert opened is not None
    assert opened.pk != alert.pk
    assert Alert.objects.get(pk=alert.pk).count == 1  # the resolved incident is left as it was


def round_queries(now: dt.datetime) -> int:
    with CaptureQueriesContext(connection) as queries:
        evaluate(now)
    return len(queries.captured_queries)


def test_a_round_runs_as_many_queries_over_10_dispatches_as_over_200() -> None:
    names = [f"tests.testapp.tasks.t{i}" for i in range(2)]
    for condition, threshold in [(Condition.LAG_P95, 10), (Condition.DRIFT_RATE, 10), (Condition.BACKLOG_AGE, 30)]:
        AlertRule.objects.create(name=condition, task_pattern="*", condition=condition, threshold=threshold)
    now = timezone.now()

    def add(count: int) -> None:
        for i in range(count):
            name = names[i % len(names)]
            at = now - dt.timedelta(seconds=120)
            make_dispatch(
                task_name=name, enqueued_at=at, lag=dt.timedelta(seconds=20), drift=Drift.CHANGED, ref_count=1
            )
            make_dispatch(task_name=name, enqueued_at=at, state=State.PENDING, lag=None)

    add(5)
    assert len(evaluate(now).opened) == 6  # 3 rules x 2 tasks: opened (and told) once, not measured below
    over_10 = round_queries(now + dt.timedelta(seconds=1))
    add(95)
    over_200 = round_queries(now + dt.timedelta(seconds=2))

    assert Alert.objects.filter(count=3).count() == 6  # both rounds saw every condition hold
    assert over_200 == over_10
