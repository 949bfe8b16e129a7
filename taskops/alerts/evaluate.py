"""Evaluating alert rules: open an alert when a condition holds, count it while it holds, resolve it
once it has stayed clear for the rule's cool-down.

One alert per rule and task name is open at a time (a database constraint
holds it, across processes); notifications go out on open and on resolve
only. A round reads each enabled rule once (see :mod:`taskops.alerts.conditions`
for what each costs), plus one query for the open alerts of disabled rules.
An alert its rule no longer watches (the rule disabled, or its pattern edited
so that the task no longer matches) is resolved at once, without a cool-down.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from typing import Any

import attrs
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from taskops.alerts.channels import notify
from taskops.alerts.conditions import Finding, measure
from taskops.alerts.journal import Event
from taskops.models import Alert, AlertRule, Condition, Dispatch
from taskops.recording import count_error

logger = logging.getLogger("taskops.alerts")
RESOLVED = Alert.Status.RESOLVED


@attrs.frozen
class Round:
    """What one evaluation did."""

    opened: list[Alert]
    resolved: list[Alert]
    #: Alerts open (or acknowledged) after the round.
    open_count: int


def evaluate(now: dt.datetime | None = None) -> Round:
    """Evaluate every enabled rule once; resolve the alerts of rules that no longer watch their task."""
    now = now or timezone.now()
    opened: list[Alert] = []
    resolved: list[Alert] = []
    for rule in AlertRule.objects.filter(enabled=True):
        findings = measure(rule, now)
        current = {alert.subject: alert for alert in rule.alerts.exclude(status=RESOLVED)}
        for subject, finding in findings.items():
            alert = observe(rule, subject, finding, now, current.get(subject))
            if alert is not None:
                opened.append(alert)
        for subject, alert in current.items():
            if subject in findings:
                continue
            watched = fnmatch.fnmatchcase(subject, rule.task_pattern)
            if clear(rule, alert, now) if watched else resolve(alert, now):
                resolved.append(alert)
    unwatched = Alert.objects.exclude(status=RESOLVED).filter(rule__enabled=False).select_related("rule")
    resolved += [alert for alert in unwatched if resolve(alert, now)]
    return Round(opened, resolved, Alert.objects.exclude(status=RESOLVED).count())


def observe(
    rule: AlertRule, subject: str, finding: Finding, now: dt.datetime, alert: Alert | None = None
) -> Alert | None:
    """The condition holds: count it on the open alert, or open one (and tell it). The opened alert, or None."""
    if alert is not None:
        # F(): a round and a worker's start may count at the same moment; neither may lose the other's.
        held = (
            Alert.objects.filter(pk=alert.pk)
            .exclude(status=RESOLVED)
            .update(count=F("count") + 1, last_seen=now, value=finding.value, samples=finding.samples, clear_since=None)
        )
        if held:
            alert.refresh_from_db(fields=["count", "last_seen", "value", "samples", "clear_since"])
            return None
        # Resolved meanwhile by another process: this occurrence opens a new incident.
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
        existing = rule.alerts.exclude(status=RESOLVED).get(subject=subject)
        return observe(rule, subject, finding, now, existing)
    notify(alert, Event.OPENED)
    return alert


def clear(rule: AlertRule, alert: Alert, now: dt.datetime) -> bool:
    """The condition is clear: start the cool-down, or resolve (and tell it) once it has passed."""
    if alert.clear_since is None:
        Alert.objects.filter(pk=alert.pk).update(clear_since=now)
        alert.clear_since = now
    if now - alert.clear_since < rule.cooldown:
        return False
    return resolve(alert, now)


def resolve(alert: Alert, now: dt.datetime) -> bool:
    """Resolve the alert and tell it; False when another process resolved it first (and told it)."""
    if not Alert.objects.filter(pk=alert.pk).exclude(status=RESOLVED).update(status=RESOLVED, resolved_at=now):
        return False
    alert.status, alert.resolved_at = RESOLVED, now
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


#: Conditions judged at once when a task starts, and the ``stale_start`` argument that says each one holds.
AT_START = {Condition.ANY_MISSING: "missing", Condition.ANY_RACE: "likely_race"}


def on_stale_start(sender: Any = None, task_name: str = "", task_id: str = "", **holds: Any) -> None:
    """A task started with a missing row or a likely race: count it on the rules that watch for it.

    Never raises into the task: its start (recorded, its policy applied) must
    not depend on alerting. An error is logged and counted with the recorder's.
    """
    conditions = [condition for condition, argument in AT_START.items() if holds.get(argument)]
    try:
        observe_at_start(task_name, task_id, conditions)
    except Exception:  # a database or channel error: the next round judges the same rows again
        count_error()
        logger.exception("taskops: alert rules could not be judged at the start of %s[%s]", task_name, task_id)


def observe_at_start(task_name: str, task_id: str, conditions: list[Condition]) -> None:
    """Count one occurrence on each enabled rule with one of ``conditions`` whose pattern matches the task."""
    if not conditions:
        return
    rules = [
        rule
        for rule in AlertRule.objects.filter(enabled=True, condition__in=conditions)
        if fnmatch.fnmatchcase(task_name, rule.task_pattern)
    ]
    if not rules:
        return
    sample = list(Dispatch.objects.filter(task_id=task_id).values_list("pk", flat=True)[:1])
    now = timezone.now()
    for rule in rules:
        current = rule.alerts.exclude(status=RESOLVED).filter(subject=task_name).first()
        observe(rule, task_name, Finding(1.0, sample), now, current)
