"""Alerts in headless Chromium against the live server: one opens on the open dashboard, an operator
acknowledges it from the Alert admin, the dashboard says so; neither page reloads to show it.

The browser and the page come from ``test_browser`` (the system's Chromium, nothing downloaded).
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from playwright.sync_api import Page, expect

from taskops.alerts import evaluate
from taskops.models import Alert, AlertRule, Channel, Condition, Drift
from tests.admin import test_browser
from tests.admin.test_browser import LIVE_TIMEOUT_MS, log_in, snap
from tests.factories import make_dispatch
from tests.testapp.models import Book

browser = test_browser.browser
page = test_browser.page

TASK = "tests.testapp.tasks.touch_book"


def test_an_alert_opens_on_the_dashboard_and_is_acknowledged_from_the_alert_admin(page: Page) -> None:
    AlertRule.objects.create(
        name="Books gone before their task ran",
        task_pattern="tests.testapp.tasks.*",
        condition=Condition.ANY_MISSING,
        channels=[Channel.DASHBOARD],
        window=dt.timedelta(minutes=10),
    )
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/?window=15m")
    panel_alerts = page.locator("#taskops-alerts .taskops-alert")
    expect(page.locator("#taskops-alerts")).to_contain_text("No open alerts.")
    page.evaluate("window.__marker = 1")

    book = Book.objects.create(title="Deleted before the worker read it")
    make_dispatch(book, task_name=TASK, drift=Drift.MISSING, enqueued_at=timezone.now())
    (opened,) = evaluate().opened

    expect(panel_alerts).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(panel_alerts.first).to_have_attribute("data-status", "open")
    expect(panel_alerts.first).to_contain_text(TASK)
    expect(panel_alerts.first).to_contain_text("Books gone before their task ran")
    assert page.evaluate("window.__marker") == 1  # swapped in by the refresh, not reloaded
    snap(page, "dashboard-alert-open", full_page=True)

    admin = page.context.new_page()  # the dashboard stays open in its own tab
    admin.goto("/admin/taskops/alert/")
    row = admin.locator("#result_list tbody tr", has_text=TASK)
    expect(row).to_have_count(1)
    row.locator("input.action-select").check()
    admin.select_option("select[name=action]", "acknowledge")
    admin.click("button[name=index]")
    expect(admin.locator(".messagelist")).to_contain_text("1 alert acknowledged.")
    expect(row.locator(".taskops-badge")).to_have_text("Acknowledged")
    snap(admin, "alert-changelist")

    opened.refresh_from_db()
    assert opened.status == Alert.Status.ACKNOWLEDGED
    assert opened.acknowledged_by is not None
    assert opened.acknowledged_by.username == "operator"

    expect(panel_alerts.first).to_have_attribute("data-status", "acknowledged", timeout=LIVE_TIMEOUT_MS)
    expect(panel_alerts.first.locator(".taskops-badge")).to_have_text("Acknowledged")
    assert page.evaluate("window.__marker") == 1
    snap(page, "dashboard-alert-acknowledged", full_page=True)

    page.click(f"#taskops-alerts a:has-text('{TASK}')")
    page.wait_for_url(re.compile(rf"/admin/taskops/alert/{opened.pk}/change/"))
    expect(page.locator("#taskops-alert-summary [data-status]")).to_have_text("Acknowledged")
    expect(page.locator("#taskops-acknowledged")).to_contain_text("operator")
    expect(page.locator("#taskops-alert-samples .taskops-sample")).to_have_count(1)
    snap(page, "alert-detail", full_page=True)
