"""How alerts look in the admin: status badges, values in their units, and the parts of an alert's page.

An alert's page (and the dashboard's panel) shows other models' rows: its
rule, the operator who acknowledged it, its sample dispatches. Each follows
``Visibility`` through ``Linker``: the rule's name and condition to users who
may view rules, the user's name to users who may view users, the dispatches
and the link to them to users who may view dispatches; everyone else sees the
content type and the pk, or nothing of the dispatches. What the alert recorded
of its own (task name, counts, values, what each channel did) is the alert's.

Queries: one for the sample dispatches; nothing else here reads the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import attrs
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from taskops.admin.display import format_duration
from taskops.admin.filters import LIKELY_RACE
from taskops.admin.links import Linker
from taskops.alerts.conditions import IN_PERCENT, IN_SECONDS
from taskops.alerts.journal import Event
from taskops.models import Alert, AlertRule, Channel, Condition, Dispatch, Drift, State

#: CSS class of each status's badge (colours live in taskops/admin.css).
STATUS_TONES: dict[str, str] = {
    Alert.Status.OPEN: "bad",
    Alert.Status.ACKNOWLEDGED: "warn",
    Alert.Status.RESOLVED: "ok",
}
#: Conditions without a threshold: any occurrence counts.
NO_THRESHOLD = frozenset({Condition.ANY_MISSING, Condition.ANY_RACE})
EVENT_LABELS: dict[str, Any] = {Event.OPENED: _("opened"), Event.RESOLVED: _("resolved")}
#: Filters of the Dispatch changelist that narrow an alert's dispatches beyond task and time.
CONDITION_FILTERS: dict[Condition, dict[str, str]] = {
    Condition.ANY_MISSING: {"drift": Drift.MISSING.value},
    Condition.ANY_RACE: {"drift": LIKELY_RACE},
    Condition.FAILURE_RATE: {"state__exact": State.FAILURE.value},
    Condition.STUCK: {"state__exact": State.STARTED.value},
}
SECOND = dt.timedelta(seconds=1)


def status_badge(status: str) -> SafeString:
    """An alert's status as a coloured label."""
    label = Alert.Status(status).label if status in Alert.Status.values else status
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', STATUS_TONES.get(status, "idle"), label)


def measured(condition: str, value: float) -> str:
    """A value in its condition's unit: "2 min 5 s", "12.5 %", "3 dispatches"."""
    if condition in IN_SECONDS:
        return format_duration(dt.timedelta(seconds=value))
    if condition in IN_PERCENT:
        return f"{value:.1f} %"
    count = round(value)
    return ngettext("%(count)d dispatch", "%(count)d dispatches", count) % {"count": count}


def threshold_text(rule: AlertRule) -> str:
    """The rule's threshold in its unit, "—" for conditions that have none."""
    return "—" if rule.condition in NO_THRESHOLD else measured(rule.condition, rule.threshold)


def rule_html(rule: AlertRule, linker: Linker) -> SafeString:
    """The rule by name, linked to its page, to users who may view rules; else "Alert rule #3"."""
    return linker.instance_link(rule).name_html()


def rule_summary(rule: AlertRule, linker: Linker) -> SafeString:
    """The rule, and what it watches (condition, threshold, window) to users who may view rules."""
    name = rule_html(rule, linker)
    if not linker.visibility.may_view(AlertRule):
        return name
    window = format_duration(rule.window)
    return format_html(
        '{} <span class="taskops-quiet">{} · {} {} · {} {}</span>',
        name,
        rule.get_condition_display(),
        _("threshold"),
        threshold_text(rule),
        _("window"),
        window,
    )


def user_html(user: Any, linker: Linker) -> SafeString | str:
    """A user by name to users who may view users, else by pk; "—" for nobody."""
    return linker.instance_link(user).name_html() if user is not None else "—"


@attrs.frozen
class NotificationRow:
    """What one channel did for one event."""

    channel: str
    event: str
    ok: bool
    detail: str
    at: dt.datetime | None


def notification_rows(alert: Alert) -> list[NotificationRow]:
    """The alert's notifications, newest first, failures included."""
    rows = []
    for entry in reversed(alert.notifications or []):
        channel, event = str(entry.get("channel", "")), str(entry.get("event", ""))
        rows.append(
            NotificationRow(
                channel=str(Channel(channel).label) if channel in Channel.values else channel,
                event=str(EVENT_LABELS.get(event, event)),
                ok=bool(entry.get("ok")),
                detail=str(entry.get("detail", "")),
                at=parse_datetime(str(entry.get("at", ""))),
            )
        )
    return rows


@attrs.frozen
class SampleRow:
    """One sample dispatch of an alert; ``dispatch`` None once it is no longer recorded (pruned)."""

    pk: int
    dispatch: Dispatch | None
    url: str | None


def sample_rows(alert: Alert, linker: Linker) -> list[SampleRow] | None:
    """The alert's sample dispatches, in one query; None for users who may not view dispatches."""
    if not linker.visibility.may_view(Dispatch):
        return None
    pks = [pk for pk in alert.samples or [] if isinstance(pk, int) and not isinstance(pk, bool)]
    columns = ["task_id", "task_name", "state", "enqueued_at", "lag", "drift", "likely_race", "ref_count"]
    found = Dispatch.objects.only(*columns).in_bulk(pks)
    return [SampleRow(pk, found.get(pk), linker.model_change_url(Dispatch, pk) if pk in found else None) for pk in pks]


def moment(value: dt.datetime) -> str:
    """A moment for a URL parameter, to the second (the changelist's filters read it back)."""
    return value.replace(microsecond=0).isoformat()


def dispatches_query(alert: Alert) -> dict[str, str]:
    """The Dispatch changelist's filters for the dispatches behind an alert.

    Its task, the rows its condition read while the alert was seen (the
    window before each evaluation; for backlog and stuck work, what had
    waited or run longer than the threshold), and the drift or state the
    condition counts where one filter says it.
    """
    rule = alert.rule
    condition = Condition(rule.condition)
    query = {"task": alert.subject}
    threshold = dt.timedelta(seconds=rule.threshold)
    if condition is Condition.BACKLOG_AGE:
        query["enqueued_at__lt"] = moment(alert.last_seen - threshold + SECOND)
    elif condition is Condition.STUCK:
        query["started_at__lt"] = moment(alert.last_seen - threshold + SECOND)
    else:
        query["enqueued_at__gte"] = moment(alert.first_seen - rule.window)
        query["enqueued_at__lt"] = moment(alert.last_seen + SECOND)
    return query | CONDITION_FILTERS.get(condition, {})


def dispatches_url(alert: Alert, linker: Linker) -> str | None:
    """The Dispatch changelist filtered to the alert's dispatches; None for users who may not view them."""
    if not linker.visibility.may_link(Dispatch):
        return None
    changelist = reverse(f"{linker.admin_site.name}:taskops_dispatch_changelist")
    return f"{changelist}?{urlencode(dispatches_query(alert))}"
