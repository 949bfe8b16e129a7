"""Rules, alerts and users for the alert pages' tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from taskops.models import Alert, AlertRule, Channel, Condition

TASK = "tests.testapp.tasks.touch_book"


def make_rule(**fields: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "Missing books",
        "task_pattern": "tests.testapp.tasks.*",
        "condition": Condition.ANY_MISSING,
        "channels": [Channel.DASHBOARD],
    }
    return AlertRule.objects.create(**(values | fields))


def make_alert(rule: AlertRule, subject: str = TASK, **fields: Any) -> Alert:
    now = timezone.now()
    values: dict[str, Any] = {"first_seen": now - dt.timedelta(minutes=3), "last_seen": now, "value": 2.0}
    return Alert.objects.create(rule=rule, subject=subject, **(values | fields))


def staff(username: str, *codenames: str) -> User:
    """A staff user with exactly these permissions (codenames)."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user
