"""The Alert admin: read-only pages, the audited "acknowledge" action, notifications, samples, who sees what."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.alerts import evaluate
from taskops.alerts.journal import entry
from taskops.models import Alert, AlertRule, Channel, Condition, Dispatch, Drift, State
from tests.admin.alerting import TASK, make_alert, make_rule, staff
from tests.admin.helpers import result_task_ids
from tests.admin.test_hostile_input import HOSTILE, query
from tests.factories import make_dispatch
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:taskops_alert_changelist")
INDEX = reverse("admin:index")


def page_of(alert: Alert) -> str:
    return reverse("admin:taskops_alert_change", args=[alert.pk])


def acknowledge(client: Client, *alerts: Alert) -> Any:
    """Post the changelist's "acknowledge" action for ``alerts``, as the admin's form does."""
    return client.post(
        CHANGELIST, {"action": "acknowledge", "index": "0", "_selected_action": [a.pk for a in alerts]}, follow=True
    )


def test_acknowledge_records_who_and_when_and_logs_it(client: Client) -> None:
    alert = make_alert(make_rule())
    operator = staff("operator", "view_alert", "change_alert")
    client.force_login(operator)

    response = acknowledge(client, alert)

    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (Alert.Status.ACKNOWLEDGED, operator)
    assert alert.acknowledged_at is not None
    assert timezone.now() - alert.acknowledged_at < dt.timedelta(minutes=1)
    (log,) = LogEntry.objects.all()
    assert (log.user, log.action_flag, log.object_id) == (operator, CHANGE, str(alert.pk))
    assert log.get_change_message() == "Changed Status, Acknowledged by and Acknowledged at."
    assert "1 alert acknowledged." in response.content.decode()


def test_without_change_permission_nobody_acknowledges(client: Client) -> None:
    alert = make_alert(make_rule())
    client.force_login(staff("viewer", "view_alert"))

    changelist = client.get(CHANGELIST).content.decode()
    acknowledge(client, alert)

    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
    assert alert.acknowledged_by is None
    assert not LogEntry.objects.exists()
    assert 'name="action"' not in changelist  # no action offered at all


def test_only_open_alerts_are_acknowledged(admin_client: Client) -> None:
    rule = make_rule()
    earlier = User.objects.create_user("earlier")
    opened = make_alert(rule, subject="tests.testapp.tasks.a")
    seen = make_alert(rule, subject="tests.testapp.tasks.b", status=Alert.Status.ACKNOWLEDGED, acknowledged_by=earlier)
    over = make_alert(rule, subject="tests.testapp.tasks.c", status=Alert.Status.RESOLVED)

    html = acknowledge(admin_client, opened, seen, over).content.decode()

    statuses = dict(Alert.objects.values_list("pk", "status"))
    assert statuses == {opened.pk: "acknowledged", seen.pk: "acknowledged", over.pk: "resolved"}
    seen.refresh_from_db()
    assert seen.acknowledged_by == earlier
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(opened.pk)]
    assert "2 alerts were not open (already acknowledged or resolved): left as they are." in html


def test_alerts_cannot_be_added_or_edited(admin_client: Client) -> None:
    alert = make_alert(make_rule())

    added = admin_client.get(reverse("admin:taskops_alert_add"))
    edited = admin_client.post(page_of(alert), {"subject": "other", "status": "resolved", "count": "9"})

    alert.refresh_from_db()
    assert (added.status_code, edited.status_code) == (403, 403)
    assert (alert.subject, alert.status, alert.count) == (TASK, Alert.Status.OPEN, 1)


def test_the_page_acknowledges_through_the_action(admin_client: Client) -> None:
    alert = make_alert(make_rule())
    html = admin_client.get(page_of(alert)).content.decode()
    form = html[html.index('class="taskops-tool-form"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'name="(action|index|_selected_action)" value="([^"]*)"', form))
    assert fields == {"action": "acknowledge", "index": "0", "_selected_action": str(alert.pk)}

    admin_client.post(CHANGELIST, fields)

    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED
    assert 'class="taskops-tool-form"' not in admin_client.get(page_of(alert)).content.decode()


def test_no_acknowledge_button_without_change_permission(client: Client) -> None:
    alert = make_alert(make_rule())
    client.force_login(staff("viewer", "view_alert"))

    response = client.get(page_of(alert))

    assert response.status_code == 200
    assert "taskops-tool-form" not in response.content.decode()


def test_the_page_shows_what_each_channel_did_failures_included(admin_client: Client) -> None:
    alert = make_alert(make_rule(channels=[Channel.EMAIL, Channel.WEBHOOK]))
    alert.notifications = [
        entry(Channel.EMAIL, "opened", False, "ValueError: no recipients: the rule lists none and ADMINS is empty"),
        entry(Channel.WEBHOOK, "opened", False, "try 1: URLError: <urlopen error [Errno 111] Connection refused>"),
        entry(Channel.WEBHOOK, "opened", True, "HTTP 204"),
    ]
    alert.save()

    html = admin_client.get(page_of(alert)).content.decode()

    rows = re.findall(r'<tr class="taskops-notification" data-ok="(true|false)">(.*?)</tr>', html, re.S)
    assert [ok for ok, _row in rows] == ["true", "false", "false"]  # newest first
    assert "HTTP 204" in rows[0][1]
    assert "Webhook" in rows[1][1]
    assert "Connection refused" in rows[1][1]
    assert "no recipients" in rows[2][1]
    assert "failed" in rows[2][1]


def missing_book_alert(now: dt.datetime) -> tuple[Alert, list[int]]:
    """An "any missing" alert opened by a real evaluation, and the pks of the dispatches it is about."""
    make_rule(window=dt.timedelta(minutes=10))
    ours = [
        make_dispatch(Book.objects.create(title=str(i)), task_name=TASK, drift=Drift.MISSING, enqueued_at=now - age)
        for i, age in enumerate([dt.timedelta(minutes=2), dt.timedelta(minutes=1)])
    ]
    # Not its dispatches: another task's, this task's with nothing missing, this task's long before.
    make_dispatch(Book.objects.create(title="x"), task_name="tests.testapp.tasks.other", drift=Drift.MISSING)
    make_dispatch(Book.objects.create(title="y"), task_name=TASK, enqueued_at=now - dt.timedelta(minutes=1))
    make_dispatch(Book.objects.create(title="z"), task_name=TASK, enqueued_at=now - dt.timedelta(hours=2))
    alerts = {alert.subject: alert for alert in evaluate(now).opened}
    return alerts[TASK], [dispatch.pk for dispatch in ours]


def test_samples_link_to_their_dispatches(admin_client: Client) -> None:
    alert, pks = missing_book_alert(timezone.now())

    html = admin_client.get(page_of(alert)).content.decode()

    shown = [int(pk) for pk in re.findall(r'<tr class="taskops-sample" data-dispatch="(\d+)">', html)]
    assert shown == pks[::-1]  # newest first, as the evaluation keeps them
    for pk in pks:
        assert reverse("admin:taskops_dispatch_change", args=[pk]) in html


def test_the_dispatches_link_lists_the_alerts_dispatches(admin_client: Client) -> None:
    now = timezone.now()
    alert, pks = missing_book_alert(now)
    html = admin_client.get(page_of(alert)).content.decode()
    link = re.search(r'<a href="([^"]+)" class="taskops-alert-dispatches">', html)
    assert link

    changelist = admin_client.get(link.group(1).replace("&amp;", "&"))

    assert changelist.status_code == 200
    expected = [task_id[:8] for task_id in Dispatch.objects.filter(pk__in=pks).values_list("task_id", flat=True)]
    assert sorted(result_task_ids(changelist.content.decode())) == sorted(expected)


def test_without_view_dispatch_no_dispatch_shows(client: Client) -> None:
    alert, _pks = missing_book_alert(timezone.now())
    client.force_login(staff("viewer", "view_alert", "view_alertrule"))

    html = client.get(page_of(alert)).content.decode()

    assert "taskops-sample" not in html
    assert "taskops-alert-dispatches" not in html
    assert reverse("admin:taskops_dispatch_changelist") not in html
    assert "Dispatches are shown to users who may view them." in html


def test_the_rule_by_name_only_to_users_who_may_view_rules(client: Client) -> None:
    rule = make_rule(name="Missing books in the catalogue", condition=Condition.LAG_P95, threshold=30)
    alert = make_alert(rule, value=95.5)
    client.force_login(staff("viewer", "view_alert"))
    without = client.get(page_of(alert)).content.decode()
    without_list = client.get(CHANGELIST).content.decode()
    client.force_login(staff("rules", "view_alert", "view_alertrule"))

    with_rules = client.get(page_of(alert)).content.decode()

    assert "Missing books in the catalogue" not in without + without_list
    assert f"Alert rule #{rule.pk}" in without
    assert "1 min 35 s" in without  # the alert's own value, in its unit
    rule_url = reverse("admin:taskops_alertrule_change", args=[rule.pk])
    assert f'<a href="{rule_url}">Missing books in the catalogue</a>' in with_rules
    assert "Lag p95 over N seconds" in with_rules


def test_the_changelist_lists_alerts_with_status_and_value(admin_client: Client) -> None:
    rule = make_rule(condition=Condition.FAILURE_RATE, threshold=10)
    make_alert(rule, value=12.5)
    make_alert(rule, subject="tests.testapp.tasks.other", status=Alert.Status.RESOLVED, value=40)

    html = admin_client.get(CHANGELIST, {"status__exact": "open"}).content.decode()

    assert "12.5 %" in html
    assert "40.0 %" not in html
    assert 'class="taskops-badge taskops-bad">Open<' in html
    assert "Task history" not in admin_client.get(page_of(Alert.objects.first())).content.decode()  # type: ignore[arg-type]


def test_the_admin_index_counts_open_alerts_for_who_may_view_them(client: Client) -> None:
    rule = make_rule()
    for subject in ("tests.testapp.tasks.a", "tests.testapp.tasks.b"):
        make_alert(rule, subject=subject)
    make_alert(rule, subject="tests.testapp.tasks.c", status=Alert.Status.ACKNOWLEDGED)
    make_alert(rule, subject="tests.testapp.tasks.d", status=Alert.Status.RESOLVED)
    client.force_login(staff("viewer", "view_alert", "view_dispatch"))
    viewer = client.get(INDEX).content.decode()
    client.force_login(staff("dispatches-only", "view_dispatch"))

    other = client.get(INDEX).content.decode()

    assert re.search(r'data-open-alerts="2">2</span>', viewer)
    assert f'href="{CHANGELIST}?status__exact=open"' in viewer
    assert "data-open-alerts" not in other
    assert "taskops-dashboardlink" in other  # the dashboard link stays


def test_the_badge_shows_without_the_dashboard_for_alert_only_users(client: Client) -> None:
    make_alert(make_rule())
    client.force_login(staff("viewer", "view_alert"))

    html = client.get(INDEX).content.decode()

    assert 'data-open-alerts="1"' in html
    assert "taskops-dashboardlink" not in html


def test_backlog_alerts_link_to_what_waited(admin_client: Client) -> None:
    now = timezone.now()
    make_rule(condition=Condition.BACKLOG_AGE, threshold=60)
    waited = make_dispatch(task_name=TASK, state=State.PENDING, enqueued_at=now - dt.timedelta(minutes=5))
    make_dispatch(task_name=TASK, state=State.PENDING, enqueued_at=now - dt.timedelta(seconds=10))
    (alert,) = evaluate(now).opened
    html = admin_client.get(page_of(alert)).content.decode()
    link = re.search(r'<a href="([^"]+)" class="taskops-alert-dispatches">', html)
    assert link

    listed = result_task_ids(admin_client.get(link.group(1).replace("&amp;", "&")).content.decode())

    assert listed == [waited.task_id[:8]]


#: The alert changelists' filters and search, each given every hostile value of ``test_hostile_input``.
ALERT_PARAMETERS = [
    (CHANGELIST, "q"),
    (CHANGELIST, "status__exact"),
    (CHANGELIST, "o"),
    (reverse("admin:taskops_alertrule_changelist"), "q"),
    (reverse("admin:taskops_alertrule_changelist"), "condition__exact"),
    (reverse("admin:taskops_alertrule_changelist"), "enabled__exact"),
]


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(("url", "param"), ALERT_PARAMETERS, ids=[f"{url[15:-1]}-{p}" for url, p in ALERT_PARAMETERS])
def test_hostile_input_is_a_400_or_finds_nothing(admin_client: Client, url: str, param: str, value: str) -> None:
    make_alert(make_rule(name="ordinary"))

    response = admin_client.get(url + query(param, value))

    assert response.status_code in (200, 400), response.status_code
    if "\x00" in value:
        assert response.status_code == 400
    elif response.status_code == 200 and param != "o":
        assert "ordinary" not in response.content.decode()


def test_alert_pages_do_not_offer_run_a_task(admin_client: Client) -> None:
    rule = AlertRule.objects.create(name="r", task_pattern="*", condition=Condition.ANY_MISSING)
    now = timezone.now()
    Alert.objects.create(rule=rule, subject="t", first_seen=now, last_seen=now)
    for url in (reverse("admin:taskops_alert_changelist"), reverse("admin:taskops_alertrule_changelist")):
        html = admin_client.get(url).content.decode()
        assert 'name="action"' in html  # the actions are there
        assert "taskops_run_task" not in html
