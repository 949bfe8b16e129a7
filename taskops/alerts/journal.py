"""What each channel did for an alert, kept on the alert (``Alert.notifications``).

Entries are appended under a row lock: the evaluation and a webhook task in
a worker may write at the same moment, and neither may lose the other's.
"""

from __future__ import annotations

import enum
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskops.models import Alert

#: Notifications kept per alert (the newest).
KEPT_NOTIFICATIONS = 50


class Event(enum.StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


def entry(channel: str, event: str, ok: bool, detail: str = "") -> dict[str, Any]:
    """One notification: which channel, for which event, whether it worked, and what it said."""
    return {"channel": channel, "event": event, "ok": ok, "detail": detail[:500], "at": timezone.now().isoformat()}


def append(alert: Alert, entries: list[dict[str, Any]]) -> None:
    """Add ``entries`` to the alert's notifications, keeping what others added meanwhile."""
    with transaction.atomic():
        current = Alert.objects.select_for_update().values_list("notifications", flat=True).get(pk=alert.pk)
        alert.notifications = [*(current or []), *entries][-KEPT_NOTIFICATIONS:]
        Alert.objects.filter(pk=alert.pk).update(notifications=alert.notifications)
