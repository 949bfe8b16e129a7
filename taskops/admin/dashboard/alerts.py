"""The dashboard's open alerts: the most recently seen open or acknowledged alerts of the rules that tell
the dashboard (``Channel.DASHBOARD``), in two queries.

Shown to users who may view alerts (``Visibility``); each alert's rule by
name to users who may view rules (``Linker``). Part of the refreshed panel,
so an alert that opens or is acknowledged shows at the next refresh. One
query reads the rules' channels (rules are few: operators write them), one
reads at most ``SHOWN + 1`` alerts, their rules joined, through the alerts'
``(status, -last_seen)`` index.
"""

from __future__ import annotations

import attrs
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString

from taskops.admin import alert_display
from taskops.admin.links import Linker
from taskops.models import Alert, AlertRule, Channel

#: Alerts the panel lists; past that it links to the rest.
SHOWN = 10
UNRESOLVED = [Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED]


@attrs.frozen
class AlertLine:
    """One alert as the panel shows it."""

    alert: Alert
    #: The alert's own page (None where AlertAdmin is not on this admin site).
    url: str | None
    rule_html: SafeString
    value: str


@attrs.frozen
class AlertPanel:
    lines: list[AlertLine]
    #: More alerts are open than the panel lists.
    more: bool
    #: The alert changelist, filtered to unresolved alerts.
    changelist_url: str | None


def open_alerts(linker: Linker) -> AlertPanel | None:
    """The panel, or None for users who may not view alerts."""
    if not linker.visibility.may_view(Alert):
        return None
    rules = [pk for pk, channels in AlertRule.objects.values_list("pk", "channels") if told(channels)]
    unresolved = Alert.objects.filter(status__in=UNRESOLVED, rule__in=rules).select_related("rule")
    alerts = list(unresolved.order_by("-last_seen", "-pk")[: SHOWN + 1])
    lines = [
        AlertLine(
            alert=alert,
            url=linker.model_change_url(Alert, alert.pk),
            rule_html=alert_display.rule_html(alert.rule, linker),
            value=alert_display.measured(alert.rule.condition, alert.value),
        )
        for alert in alerts[:SHOWN]
    ]
    return AlertPanel(lines=lines, more=len(alerts) > SHOWN, changelist_url=changelist_url(linker))


def told(channels: object) -> bool:
    """The rule's channels name the dashboard (a JSON list; compared here, as SQLite cannot in SQL)."""
    return isinstance(channels, list) and Channel.DASHBOARD in channels


def changelist_url(linker: Linker) -> str | None:
    try:
        url = reverse(f"{linker.admin_site.name}:taskops_alert_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?status__in={','.join(UNRESOLVED)}"
