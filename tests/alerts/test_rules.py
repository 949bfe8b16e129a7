"""Bad rule input is a form error, field by field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from taskops.models import AlertRule, Channel, Condition

GOOD: dict[str, Any] = {
    "name": "slow",
    "task_pattern": "shop.*",
    "condition": Condition.LAG_P95,
    "threshold": 30,
    "window": dt.timedelta(minutes=15),
    "cooldown": dt.timedelta(minutes=5),
    "channels": [Channel.EMAIL, Channel.WEBHOOK],
    "webhook_url": "https://hooks.example.com/taskops",
    "webhook_secret": "a-webhook-secret",
    "min_count": 1,
}

BAD = [
    ("empty pattern", {"task_pattern": "  "}, "task_pattern"),
    ("zero threshold", {"threshold": 0}, "threshold"),
    ("negative threshold", {"threshold": -5}, "threshold"),
    ("a rate of 100 %", {"condition": Condition.FAILURE_RATE, "threshold": 100}, "threshold"),
    ("unknown channel", {"channels": ["pager"]}, "channels"),
    ("a webhook URL that is not http(s)", {"webhook_url": "ftp://example.com/x"}, "webhook_url"),
    ("the webhook channel without a URL", {"webhook_url": ""}, "webhook_url"),
    ("the webhook channel without a secret", {"webhook_secret": ""}, "webhook_secret"),
    (
        "a URL that is not http(s), the webhook channel not chosen",
        {"channels": [Channel.EMAIL], "webhook_url": "ftp://example.com/x"},
        "webhook_url",
    ),
    ("a window shorter than the evaluation interval", {"window": dt.timedelta(seconds=10)}, "window"),
    ("a negative cool-down", {"cooldown": dt.timedelta(seconds=-1)}, "cooldown"),
    ("a minimum count of zero", {"min_count": 0}, "min_count"),
]


def test_a_good_rule_is_clean() -> None:
    AlertRule(**GOOD).full_clean()


def test_any_missing_needs_no_threshold() -> None:
    AlertRule(**{**GOOD, "condition": Condition.ANY_MISSING, "threshold": 0}).full_clean()


@pytest.mark.parametrize(("what", "changes", "field"), BAD, ids=[case[0] for case in BAD])
def test_bad_input_is_a_field_error(what: str, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        AlertRule(**{**GOOD, **changes}).full_clean()
    assert field in error.value.message_dict


def test_a_rule_without_the_webhook_channel_needs_no_url_nor_secret() -> None:
    AlertRule(**{**GOOD, "channels": [Channel.EMAIL], "webhook_url": "", "webhook_secret": ""}).full_clean()


@override_settings(TASKOPS={"ALERTS_INTERVAL": 2 * 86400})
def test_the_window_error_names_an_interval_of_days_in_seconds() -> None:
    with pytest.raises(ValidationError) as error:
        AlertRule(**{**GOOD, "window": dt.timedelta(days=1)}).full_clean()
    assert error.value.message_dict["window"] == ["The window must be at least the evaluation interval (172800 s)."]
