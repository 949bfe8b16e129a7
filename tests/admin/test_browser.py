"""The operator's path through the admin, in headless Chromium against a live server.

Chromium is the system's (Debian's ``chromium`` package, or ``TASKOPS_CHROMIUM``);
nothing downloads a browser. One browser serves the whole module; each test
gets a fresh context. Screenshots land in ``var/screenshots/``, and also in
the folder named by ``TASKOPS_SCREENSHOTS`` (``TASKOPS_SCREENSHOTS=docs`` refreshes
the README's pictures).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, sync_playwright

from taskops.admin import DispatchAdmin
from taskops.models import Drift
from tests.conftest import WorkerProcess
from tests.factories import make_dispatch, seed_showcase
from tests.testapp.models import Question
from tests.testapp.tasks import count_words

BASE_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TASKOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
#: Seconds to wait for the dashboard to show new work (a few refreshes).
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module.

    Playwright's sync API runs an event loop in this thread while the browser
    is open, which makes Django refuse ORM calls from the test; the test's ORM
    calls are plain synchronous ones, so the check is lifted for the module.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    monkeypatch.setattr(DispatchAdmin, "dashboard_refresh_seconds", 1)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


def snap(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save a screenshot under var/screenshots/, and under $TASKOPS_SCREENSHOTS when set."""
    folders = [BASE_DIR / "var" / "screenshots"]
    if os.environ.get("TASKOPS_SCREENSHOTS"):
        folders.append(BASE_DIR / os.environ["TASKOPS_SCREENSHOTS"])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def log_in(page: Page) -> None:
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def dispatched_count(page: Page) -> int:
    return int(page.inner_text('[data-metric="dispatched"] .taskops-value'))


# The detail page shows old -> new values of the fields this names (the seed keeps the body's).
@override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["body"]}})
def test_changelist_to_detail_to_object_and_its_history(page: Page) -> None:
    seeded = seed_showcase()
    question = seeded["questions"][0]
    log_in(page)
    assert page.locator("a.taskops-dashboardlink").count() == 1  # linked from the admin index

    page.goto("/admin/taskops/dispatch/")
    assert page.locator("#result_list tbody tr").count() == len(seeded["dispatches"])
    snap(page, "changelist")

    page.locator("#changelist-filter a", has_text="Any changed").click()
    page.wait_for_url(re.compile(r"drift=changed"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert rows.first.locator(".taskops-badge", has_text="changed").count() == 1

    rows.first.locator("th a").click()
    page.wait_for_url(re.compile(r"/admin/taskops/dispatch/\d+/change/"))
    assert page.inner_text("#taskops-summary h2") == "tests.testapp.tasks.rebuild_summary"
    assert page.locator("#taskops-refs .taskops-old", has_text="The worker reads the row.").count() == 1
    snap(page, "detail", full_page=True)

    page.locator("#taskops-refs a", has_text=f"Question #{question.pk}").click()
    page.wait_for_url(f"**/admin/testapp/question/{question.pk}/change/")
    page.click("a.taskops-historylink")
    page.wait_for_url(re.compile(r"/admin/taskops/dispatch/object-history/\d+/"))
    history_tasks = page.locator("tr.taskops-history-row th a").all_inner_texts()
    assert history_tasks == ["tests.testapp.tasks.summarize_thread", "tests.testapp.tasks.rebuild_summary"]
    snap(page, "history")


def test_dashboard_counts_new_work_without_reloading(page: Page) -> None:
    seed_showcase()
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/?window=15m")
    before = dispatched_count(page)
    assert before == 9
    page.evaluate("window.__marker = 1")
    snap(page, "dashboard", full_page=True)

    question = Question.objects.create(title="Fresh question", body="b")
    for _ in range(3):
        make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"], enqueued_at=timezone.now())

    page.wait_for_function(
        f"document.querySelector('[data-metric=\"dispatched\"] .taskops-value').textContent.trim() === '{before + 3}'",
        timeout=LIVE_TIMEOUT_MS,
    )
    assert page.evaluate("window.__marker") == 1  # the same page: swapped in place, not reloaded


def test_dashboard_stops_polling_while_hidden(page: Page) -> None:
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/")
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/dashboard/" in request.url else None)

    page.evaluate("Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'})")
    page.wait_for_timeout(2_500)
    hidden_polls = len(polls)
    page.evaluate("Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'})")
    with page.expect_request(re.compile(r"/dashboard/"), timeout=3_000):
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")

    assert hidden_polls == 0


def test_dashboard_counts_a_real_task_run_by_the_worker(page: Page, worker: WorkerProcess) -> None:
    """Needs the recorder (Celery signals -> Dispatch rows); the worker really runs the task."""
    question = Question.objects.create(title="Counted by a worker", body="one two three")
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/?window=15m")
    before = dispatched_count(page)
    page.evaluate("window.__marker = 1")

    result = count_words.delay("testapp.question", question.pk)
    assert result.get(timeout=60) == 3

    try:
        page.wait_for_function(
            "document.querySelector('[data-metric=\"dispatched\"] .taskops-value').textContent.trim()"
            f" === '{before + 1}'",
            timeout=LIVE_TIMEOUT_MS,
        )
    except Exception as error:  # noqa: BLE001 - Playwright's TimeoutError, reported with context
        pytest.fail(f"the task ran, but the dashboard never counted it (is a Dispatch recorded?): {error}")
    assert page.evaluate("window.__marker") == 1
