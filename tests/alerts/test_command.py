"""``taskops_alerts``: one round; exit status 1 while alerts are open."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from taskops.alerts import acknowledge
from taskops.models import Alert, AlertRule, Condition, Drift
from tests.factories import make_dispatch
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("taskops_alerts", *args, stdout=out)
    except SystemExit as stop:
        return int(stop.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_no_alerts_exit_zero() -> None:
    AlertRule.objects.create(name="missing", task_pattern="*", condition=Condition.ANY_MISSING)
    assert run("--once") == (0, "no open alerts\n")


def test_open_alerts_exit_one_until_acknowledged_when_asked() -> None:
    AlertRule.objects.create(name="missing", task_pattern="*", condition=Condition.ANY_MISSING)
    make_dispatch(Book.objects.create(title="b"), task_name="t.x", drift=Drift.MISSING)

    status, output = run("--once")
    assert status == 1
    assert "opened: missing [t.x] value 1, seen 1 time(s)" in output
    assert "open: missing [t.x]" in output

    acknowledge(Alert.objects.get(), None)
    assert run("--once")[0] == 1
    assert run("--once", "--ignore-acknowledged")[0] == 0


def test_the_alert_of_a_rule_disabled_since_resolves_and_the_status_is_0() -> None:
    rule = AlertRule.objects.create(name="missing", task_pattern="*", condition=Condition.ANY_MISSING)
    make_dispatch(Book.objects.create(title="b"), task_name="t.x", drift=Drift.MISSING)
    assert run("--once")[0] == 1
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)  # the row is still missing: nothing judges it now

    status, output = run("--once")

    assert status == 0
    assert "resolved: missing [t.x]" in output
