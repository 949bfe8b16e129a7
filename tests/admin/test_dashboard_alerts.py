"""The dashboard's open alerts: listed for users who may view alerts, refreshed with the panel, one query."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from taskops.admin.dashboard.alerts import SHOWN
from taskops.models import Alert, Channel, Condition
from tests.admin.alerting import make_alert, make_rule, staff

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:taskops_dispatch_dashboard")
HTMX = {"HX-Request": "true"}


def listed(html: str) -> list[tuple[str, str]]:
    """(alert pk, status) of each alert the panel lists, in order."""
    return re.findall(r'class="taskops-item taskops-alert" data-alert="(\d+)" data-status="(\w+)"', html)


def test_open_and_acknowledged_alerts_are_listed_in_the_refreshed_panel(admin_client: Client) -> None:
    rule = make_rule(name="Slow books", condition=Condition.LAG_ANY, threshold=30)
    older = make_alert(rule, subject="tests.testapp.tasks.a", status=Alert.Status.ACKNOWLEDGED, value=95)
    newer = make_alert(rule, subject="tests.testapp.tasks.b")
    make_alert(rule, subject="tests.testapp.tasks.c", status=Alert.Status.RESOLVED)
    older.last_seen = newer.last_seen.replace(year=newer.last_seen.year - 1)
    older.save()

    partial = admin_client.get(DASHBOARD, headers=HTMX).content.decode()

    assert partial.lstrip().startswith('<div id="taskops-panel"')  # inside what the poll swaps
    assert listed(partial) == [(str(newer.pk), "open"), (str(older.pk), "acknowledged")]
    assert reverse("admin:taskops_alert_change", args=[newer.pk]) in partial
    assert "Slow books" in partial
    assert "1 min 35 s" in partial


def test_no_open_alerts_says_so(admin_client: Client) -> None:
    make_alert(make_rule(name="Told by email only", channels=[Channel.EMAIL]))  # not the dashboard's to tell

    html = admin_client.get(DASHBOARD).content.decode()

    assert 'id="taskops-alerts"' in html
    assert "No open alerts." in html
    assert listed(html) == []


def test_users_who_may_not_view_alerts_see_no_panel(client: Client) -> None:
    make_alert(make_rule())
    client.force_login(staff("viewer", "view_dispatch"))

    html = client.get(DASHBOARD).content.decode()

    assert 'id="taskops-alerts"' not in html
    assert "taskops-alert" not in html


def test_a_rule_shows_by_name_only_to_users_who_may_view_rules(client: Client) -> None:
    rule = make_rule(name="Missing books in the catalogue")
    make_alert(rule)
    client.force_login(staff("viewer", "view_dispatch", "view_alert"))

    html = client.get(DASHBOARD).content.decode()

    assert len(listed(html)) == 1
    assert "Missing books in the catalogue" not in html
    assert f"Alert rule #{rule.pk}" in html


def test_past_the_shown_ones_it_links_to_the_rest_in_two_queries(admin_client: Client) -> None:
    rule = make_rule()
    for index in range(SHOWN + 1):
        make_alert(rule, subject=f"tests.testapp.tasks.t{index}")
    admin_client.get(DASHBOARD)

    with CaptureQueriesContext(connection) as queries:
        html = admin_client.get(DASHBOARD).content.decode()

    assert len(listed(html)) == SHOWN
    assert f'href="{reverse("admin:taskops_alert_changelist")}?status__in=open,acknowledged"' in html
    assert len([q for q in queries.captured_queries if "taskops_alert" in q["sql"]]) == 2  # rules, alerts
