"""Telling an alert: on open and on resolve, through each channel of its rule, never per occurrence.

Email, the log and the Django signal are told at once; a webhook is posted
by a Celery task (:mod:`taskops.alerts.tasks`), signed, with retries, so that
a slow or broken endpoint never holds up an evaluation. What each channel did
is kept on the alert (``Alert.notifications``), failures included.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.mail import send_mail

from taskops.alerts.journal import Event, append, entry
from taskops.alerts.webhook import post_webhook
from taskops.models import Alert, Channel
from taskops.signals import alert_opened, alert_resolved

logger = logging.getLogger("taskops.alerts")


def describe(alert: Alert, event: Event) -> str:
    rule = alert.rule
    verb = "opened" if event is Event.OPENED else "resolved"
    return f"[taskops] {rule.name}: {alert.subject} ({rule.get_condition_display()}) {verb}; value {alert.value:g}"


def payload(alert: Alert, event: Event) -> dict[str, Any]:
    """The JSON a webhook receives."""
    rule = alert.rule
    return {
        "event": str(event),
        "rule": {"id": rule.pk, "name": rule.name, "condition": rule.condition, "threshold": rule.threshold},
        "alert": {
            "id": alert.pk,
            "task": alert.subject,
            "status": alert.status,
            "count": alert.count,
            "value": alert.value,
            "first_seen": alert.first_seen.isoformat(),
            "last_seen": alert.last_seen.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "samples": alert.samples,
        },
    }


def notify(alert: Alert, event: Event) -> None:
    """Tell the alert through each channel of its rule; keep what each did."""
    entries = []
    for channel in alert.rule.channels or []:
        try:
            detail = SENDERS[Channel(channel)](alert, event)
        except Exception as exc:  # one broken channel must not silence the others
            logger.warning("taskops: alert channel %s failed for %s", channel, alert, exc_info=True)
            entries.append(entry(channel, event, False, f"{type(exc).__name__}: {exc}"))
        else:
            entries.append(entry(channel, event, True, detail))
    append(alert, entries)


def to_dashboard(alert: Alert, event: Event) -> str:
    return "shown"


def by_email(alert: Alert, event: Event) -> str:
    recipients = alert.rule.recipients()
    if not recipients:
        raise ValueError("no recipients: the rule lists none and ADMINS is empty")
    send_mail(describe(alert, event), json.dumps(payload(alert, event), indent=2), None, recipients)
    return ", ".join(recipients)


def to_log(alert: Alert, event: Event) -> str:
    level = logging.WARNING if event is Event.OPENED else logging.INFO
    logger.log(level, "%s", describe(alert, event))
    return "logged"


def by_signal(alert: Alert, event: Event) -> str:
    (alert_opened if event is Event.OPENED else alert_resolved).send(sender=Alert, alert=alert)
    return "sent"


def by_webhook(alert: Alert, event: Event) -> str:
    post_webhook.delay(alert.pk, str(event), json.dumps(payload(alert, event)))
    return "queued"


SENDERS = {
    Channel.DASHBOARD: to_dashboard,
    Channel.EMAIL: by_email,
    Channel.LOG: to_log,
    Channel.SIGNAL: by_signal,
    Channel.WEBHOOK: by_webhook,
}
