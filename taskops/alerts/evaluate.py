"""Evaluating alert rules: open an alert when a condition holds, count it while it holds, resolve it
once it has stayed clear for the rule's cool-down.

One alert per rule and task name is open at a time (a database constraint
holds it, across processes); notifications go out on open and on resolve
only. A round reads each enabled rule once (see :mod:`taskops.alerts.conditions`
for what each costs).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

import attrs
from django.db import IntegrityError, transaction
from django.utils import timezone

from taskops.alerts.channels import notify
from taskops.alerts.conditions import Finding, measure
from taskops.alerts.journal import Event
from taskops.models import Alert, AlertRule, Condition, Dispatch


@attrs.frozen
class Round:
    """What one evaluation did."""

    opened: list[Alert]
    resolved: list[Alert]
    #: Alerts open (or acknowledged) after the round.
    open_count: int


def evaluate(now: dt.datetime | None = None) -> Round:
    """Evaluate every enabled rule once."""
    now = now or timezone.now()
    opened: list[Alert] = []
    resolved: list[Alert] = []
    for rule in AlertRule.objects.filter(enabled=True):
        findings = measure(rule, now)
        current = {alert.subject: alert for alert in rule.alerts.exclude(status=Alert.Status.RESOLVED)}
        for subject, finding in findings.items():
            alert = observe(rule, subject, finding, now, current.get(subject))
            if alert is not None:
                opened.append(alert)
        for subject, alert in current.items():
            if subject not in findings and clear(rule, alert, now):
                resolved.append(alert)
    return Round(opened, resolved, Alert.objects.exclude(status=Alert.Status.RESOLVED).count())


def observe(
    rule: AlertRule, subject: str, finding: Finding, now: dt.datetime, alert: Alert | None = None
) -> Alert | None:
    """The condition holds: count it on the open alert, or open one (and tell it). The opened alert, or None."""
    if alert is not None:
        Alert.objects.filter(pk=alert.pk).update(
            count=alert.count + 1, last_seen=now, value=finding.value, samples=finding.samples, clear_since=None
        )
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                subject=subject,
                first_seen=now,
                last_seen=now,
                value=finding.value,
                samples=finding.samples,
            )
    except IntegrityError:  # another process opened it first: count on that one
        existing = rule.alerts.exclude(status=Alert.Status.RESOLVED).get(subject=subject)
        return observe(rule, subject, finding, now, existing)
    notify(alert, Event.OPENED)
    return alert


def clear(rule: AlertRule, alert: Alert, now: dt.datetime) -> bool:
    """The condition is clear: start the cool-down, or resolve (and tell it) once it has passed."""
    if alert.clear_since is None:
        Alert.objects.filter(pk=alert.pk).update(clear_since=now)
        if rule.cooldown > dt.timedelta(0):
            return False
        alert.clear_since = now
    if now - alert.clear_since < rule.cooldown:
        return False
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    Alert.objects.filter(pk=alert.pk).update(status=alert.status, resolved_at=now)
    notify(alert, Event.RESOLVED)
    return True


def acknowledge(alert: Alert, user: Any, now: dt.datetime | None = None) -> bool:
    """An operator has seen it: it stays until the condition clears, without asking for attention.

    True when it was open and is acknowledged now. Only an open alert changes,
    judged by the row, not by ``alert`` as loaded: one resolved meanwhile by an
    evaluation stays resolved.
    """
    now = now or timezone.now()
    still_open = Alert.objects.filter(pk=alert.pk, status=Alert.Status.OPEN)
    if not still_open.update(status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now):
        return False
    alert.status, alert.acknowledged_by, alert.acknowledged_at = Alert.Status.ACKNOWLEDGED, user, now
    return True


#: Conditions judged at once when a task starts, without waiting for a round.
AT_START = (Condition.ANY_MISSING, Condition.ANY_RACE)


def on_stale_start(
    sender: Any = None,
    task_name: str = "",
    task_id: str = "",
    missing: bool = False,
    likely_race: bool = False,
    **kw: Any,
) -> None:
    """A task started with a missing row or a likely race: count it on the rules that watch for it."""
    wanted = [Condition.ANY_MISSING] if missing else []
    wanted += [Condition.ANY_RACE] if likely_race else []
    rules = [
        rule
        for rule in AlertRule.objects.filter(enabled=True, condition__in=wanted)
        if fnmatch.fnmatchcase(task_name, rule.task_pattern)
    ]
    if not rules:
        return
    sample = list(Dispatch.objects.filter(task_id=task_id).values_list("pk", flat=True)[:1])
    now = timezone.now()
    for rule in rules:
        current = rule.alerts.exclude(status=Alert.Status.RESOLVED).filter(subject=task_name).first()
        observe(rule, task_name, Finding(1.0, sample), now, current)
