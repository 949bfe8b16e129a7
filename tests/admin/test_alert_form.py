"""Alert rules through the admin's forms: the model's errors on their fields, nothing saved; a write-only secret."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from taskops.models import AlertRule, Channel, Condition

pytestmark = pytest.mark.django_db

ADD = reverse("admin:taskops_alertrule_add")
SECRET = "a-webhook-secret-nobody-should-read"

#: A rule the add form accepts, as the browser posts it (TASKOPS["ALERTS_INTERVAL"] is 60 s).
GOOD: dict[str, Any] = {
    "name": "Slow shop tasks",
    "enabled": "on",
    "task_pattern": "shop.tasks.*",
    "condition": Condition.LAG_P95.value,
    "threshold": "30",
    "min_count": "1",
    "window": "00:15:00",
    "cooldown": "00:05:00",
    "channels": [Channel.DASHBOARD.value, Channel.WEBHOOK.value],
    "emails": "",
    "webhook_url": "https://hooks.example.com/taskops",
    "webhook_secret": SECRET,
}

#: (case, what the form posts instead, the field whose error it is)
BAD = [
    ("empty pattern", {"task_pattern": "   "}, "task_pattern"),
    ("zero threshold", {"threshold": "0"}, "threshold"),
    ("negative threshold", {"threshold": "-5"}, "threshold"),
    ("unknown channel", {"channels": [Channel.DASHBOARD.value, "pager"]}, "channels"),
    ("webhook URL not http(s)", {"webhook_url": "ftp://hooks.example.com/taskops"}, "webhook_url"),
    ("webhook channel without a secret", {"webhook_secret": ""}, "webhook_secret"),
    ("webhook channel without a URL", {"webhook_url": ""}, "webhook_url"),
    (
        "a URL not http(s), the webhook channel not chosen",
        {"channels": [Channel.DASHBOARD.value], "webhook_url": "ftp://hooks.example.com/taskops"},
        "webhook_url",
    ),
    ("window shorter than the evaluation interval", {"window": "00:00:30"}, "window"),
]


def errors_of(response: Any) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {field: list(messages) for field, messages in form.errors.items()}


def test_a_good_rule_is_saved(admin_client: Client) -> None:
    response = admin_client.post(ADD, GOOD)

    assert response.status_code == 302, errors_of(response)
    rule = AlertRule.objects.get()
    assert (rule.task_pattern, rule.threshold, rule.channels) == ("shop.tasks.*", 30.0, ["dashboard", "webhook"])
    assert rule.webhook_secret == SECRET


@pytest.mark.parametrize(("case", "changes", "field"), BAD, ids=[case for case, _changes, _field in BAD])
def test_bad_input_is_an_error_on_its_field_and_nothing_is_saved(
    admin_client: Client, case: str, changes: dict[str, Any], field: str
) -> None:
    response = admin_client.post(ADD, {**GOOD, **changes})

    assert response.status_code == 200
    errors = errors_of(response)
    assert list(errors) == [field], errors
    assert AlertRule.objects.count() == 0
    assert SECRET not in response.content.decode()  # not echoed back, even into the form shown again


def test_the_model_says_which_channel_is_unknown(admin_client: Client) -> None:
    response = admin_client.post(ADD, {**GOOD, "channels": ["pager"]})

    assert errors_of(response) == {"channels": ["Unknown channel(s): pager."]}


def test_channels_are_checkboxes(admin_client: Client) -> None:
    html = admin_client.get(ADD).content.decode()

    for channel in Channel:
        assert f'type="checkbox" name="channels" value="{channel.value}"' in html


def stored_rule() -> AlertRule:
    return AlertRule.objects.create(
        name="r",
        task_pattern="*",
        condition=Condition.ANY_MISSING,
        channels=[Channel.WEBHOOK],
        webhook_url="https://hooks.example.com/x",
        webhook_secret=SECRET,
    )


def change(rule: AlertRule) -> str:
    return reverse("admin:taskops_alertrule_change", args=[rule.pk])


def posted(rule: AlertRule, **changes: Any) -> dict[str, Any]:
    """The change form as the browser posts it: the secret's input blank, as the page left it."""
    return {
        **GOOD,
        "condition": rule.condition,
        "threshold": "0",
        "channels": rule.channels,
        "webhook_url": rule.webhook_url,
        "webhook_secret": "",
        **changes,
    }


def test_the_stored_secret_is_never_shown(admin_client: Client) -> None:
    rule = stored_rule()

    html = admin_client.get(change(rule)).content.decode()

    assert SECRET not in html
    assert 'type="password" name="webhook_secret"' in html
    assert "A secret is set" in html


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, SECRET),
        ({"webhook_secret": "a-new-one"}, "a-new-one"),
        ({"clear_webhook_secret": "on", "channels": [Channel.DASHBOARD.value]}, ""),
    ],
    ids=["blank keeps it", "typed replaces it", "remove clears it (the webhook channel with it)"],
)
def test_saving_a_rule_keeps_replaces_or_removes_the_secret(
    admin_client: Client, changes: dict[str, Any], expected: str
) -> None:
    rule = stored_rule()

    response = admin_client.post(change(rule), posted(rule, **changes))

    assert response.status_code == 302, errors_of(response)
    rule.refresh_from_db()
    assert rule.webhook_secret == expected


def test_removing_the_secret_of_a_rule_that_keeps_its_webhook_is_refused(admin_client: Client) -> None:
    rule = stored_rule()

    response = admin_client.post(change(rule), posted(rule, clear_webhook_secret="on"))

    assert response.status_code == 200
    assert list(errors_of(response)) == ["webhook_secret"]
    rule.refresh_from_db()
    assert rule.webhook_secret == SECRET
    assert SECRET not in response.content.decode()


def test_a_read_only_user_sees_whether_a_secret_is_set_not_what_it_is(client: Client) -> None:
    rule = stored_rule()
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_alertrule"))
    client.force_login(user)

    response = client.get(change(rule))

    html = response.content.decode()
    assert response.status_code == 200
    assert SECRET not in html
    assert 'name="webhook_secret"' not in html
    assert "field-secret_display" in html
