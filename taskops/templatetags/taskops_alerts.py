"""Template tags of the alert pages, the dashboard's alert panel and the admin index's badge.

``{% taskops_open_alerts as open_alerts %}`` gives the number of open alerts
and the page that lists them, to users who may view alerts (one ``COUNT``
through the alerts' status index); anyone else gets None.
"""

from __future__ import annotations

from typing import Any

import attrs
from django import template
from django.urls import NoReverseMatch, reverse

from taskops.admin import alert_display
from taskops.models import Alert

register = template.Library()
register.filter("alert_status", alert_display.status_badge)


@attrs.frozen
class OpenAlerts:
    """How many alerts are open (not acknowledged yet), and where they are listed."""

    count: int
    url: str


def can_view_alerts(user: Any) -> bool:
    return bool(user.has_perm("taskops.view_alert") or user.has_perm("taskops.change_alert"))


@register.simple_tag(takes_context=True)
def taskops_open_alerts(context: template.Context) -> OpenAlerts | None:
    """Open alerts and their changelist (filtered to them), for users who may view alerts; else None."""
    request = context.get("request")
    if request is None or not can_view_alerts(request.user):
        return None
    try:
        changelist = reverse("admin:taskops_alert_changelist", current_app=getattr(request, "current_app", None))
    except NoReverseMatch:  # AlertAdmin is not registered on this site
        return None
    count = Alert.objects.filter(status=Alert.Status.OPEN).count()
    return OpenAlerts(count=count, url=f"{changelist}?status__exact={Alert.Status.OPEN.value}")
