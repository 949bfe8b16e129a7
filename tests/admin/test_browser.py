"""The operator's path through the admin, in headless Chromium against a live server.

Chromium is the system's (Debian's ``chromium`` package, or ``TASKOPS_CHROMIUM``);
nothing downloads a browser. One browser serves the whole module; each test
gets a fresh context. Screenshots land in ``var/screenshots/``; the README's
pictures also in the folder named by ``TASKOPS_SCREENSHOTS``
(``TASKOPS_SCREENSHOTS=docs`` refreshes them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from taskops.admin import DispatchAdmin
from taskops.models import Dispatch, Drift, State
from tests.admin.layout import layout_problems, set_nav_sidebar
from tests.conftest import WorkerProcess
from tests.factories import add_ref, make_dispatch, seed_showcase
from tests.testapp.models import Question, Tag
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


def snap(page: Page, name: str, *, full_page: bool = False, readme: bool = False) -> None:
    """Save a screenshot under var/screenshots/, and a README picture also under $TASKOPS_SCREENSHOTS when set."""
    folders = [BASE_DIR / "var" / "screenshots"]
    if readme and os.environ.get("TASKOPS_SCREENSHOTS"):
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
    snap(page, "changelist", readme=True)

    page.locator("#changelist-filter a", has_text="Any changed").click()
    page.wait_for_url(re.compile(r"drift=changed"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert rows.first.locator(".taskops-badge", has_text="changed").count() == 1

    rows.first.locator("th a").click()
    page.wait_for_url(re.compile(r"/admin/taskops/dispatch/\d+/change/"))
    assert page.inner_text("#taskops-summary h2") == "tests.testapp.tasks.rebuild_summary"
    assert page.locator("#taskops-refs .taskops-old", has_text="The worker reads the row.").count() == 1
    snap(page, "detail", full_page=True, readme=True)

    page.locator("#taskops-refs a", has_text=f"Question #{question.pk}").click()
    page.wait_for_url(f"**/admin/testapp/question/{question.pk}/change/")
    page.click("a.taskops-historylink")
    page.wait_for_url(re.compile(r"/admin/taskops/dispatch/object-history/\d+/"))
    history_tasks = page.locator("tr.taskops-history-row th a").all_inner_texts()
    assert history_tasks == ["tests.testapp.tasks.summarize_thread", "tests.testapp.tasks.rebuild_summary"]
    snap(page, "history", readme=True)


def test_dashboard_counts_new_work_without_reloading(page: Page) -> None:
    seeded = seed_showcase()
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/?window=15m")
    before = dispatched_count(page)
    assert before == len(seeded["dispatches"])
    page.evaluate("window.__marker = 1")
    snap(page, "dashboard", full_page=True, readme=True)

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


def test_a_failed_refresh_is_shown_until_one_succeeds(page: Page) -> None:
    log_in(page)
    page.goto("/admin/taskops/dispatch/dashboard/")
    alert = page.locator("#taskops-panel [role=alert]")
    expect(alert).to_be_hidden()
    updated = page.locator(".taskops-updated time")

    def fail(answer: str) -> None:
        """Make the panel's refreshes (htmx requests only) fail: a 500, or no answer at all."""

        def handle(route: Route) -> None:
            if route.request.headers.get("hx-request") != "true":
                route.continue_()
            elif answer == "500":
                route.fulfill(status=500, body="Server Error")
            else:
                route.abort("connectionrefused")

        page.route(re.compile(r"/dashboard/"), handle)

    for answer, reason in [("500", "The server answered 500"), ("no answer", "The server could not be reached.")]:
        fail(answer)
        expect(alert).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(alert).to_contain_text("The dashboard could not refresh.")
        expect(alert).to_contain_text(reason)
        stale = updated.get_attribute("datetime")
        snap(page, f"dashboard-refresh-failed-{answer.replace(' ', '-')}")

        page.unroute(re.compile(r"/dashboard/"))
        expect(alert).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        assert updated.get_attribute("datetime") != stale  # cleared by a refresh that succeeded


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


#: Labels as real data has them: a hash-like title with no place to break, and a long sentence.
UNBROKEN_TITLE = "sha256-" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" * 3
WORDY_TITLE = ("Why does the worker keep reading rows that changed after the dispatch was enqueued? " * 3)[:200]
LONG_WORKER = "celery@ip-10-0-12-34.eu-west-1.compute.internal-worker-pool-b"


@attrs.frozen
class LongLabels:
    tag: Tag
    unbroken: Question
    wordy: Question
    dispatch: Dispatch


def seed_long_labels() -> LongLabels:
    """A UUID-pk tag and 200-character labels, referenced by dispatches in every state the pages draw."""
    tag = Tag.objects.create(name="ReleaseCandidateForTheSpringMigrationOfBillingData")
    unbroken = Question.objects.create(title=UNBROKEN_TITLE[:200], body="b")
    wordy = Question.objects.create(title=WORDY_TITLE, body="b")
    dispatch = make_dispatch(
        tag,
        unbroken,
        wordy,
        task_name="tests.testapp.tasks.rebuild_summary",
        drift=Drift.CHANGED,
        changed_fields=["title", "body", "summary", "updated_at"],
        values={"title": UNBROKEN_TITLE[:200]},
        worker=LONG_WORKER,
    )
    Question.objects.filter(pk=unbroken.pk).update(title=UNBROKEN_TITLE[::-1][:200])
    make_dispatch(tag, state=State.PENDING, task_name="tests.testapp.tasks.moderate_answer")
    pending = make_dispatch(tag, task_name="tests.testapp.tasks.summarize_thread", worker=LONG_WORKER)
    add_ref(pending, unbroken, argument="kwargs.report.question.answers[0].question")
    make_dispatch(task_name="tests.testapp.tasks.count_words", worker=LONG_WORKER)
    return LongLabels(tag, unbroken, wordy, dispatch)


def object_history(obj: Any) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return f"/admin/taskops/dispatch/object-history/{content_type.pk}/{obj.pk}/"


@pytest.mark.parametrize("sidebar", ["sidebar-open", "sidebar-closed"])
def test_long_labels_neither_overlap_nor_clip_silently(page: Page, sidebar: str) -> None:
    made = seed_long_labels()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page)
    set_nav_sidebar(page, open_=sidebar == "sidebar-open")
    pages = {
        "changelist": "/admin/taskops/dispatch/",
        "detail": f"/admin/taskops/dispatch/{made.dispatch.pk}/change/",
        "history of a tag": object_history(made.tag),
        "history of a question": object_history(made.unbroken),
        "dashboard": "/admin/taskops/dispatch/dashboard/",
    }
    found = {}
    for name, url in pages.items():
        page.goto(url)
        assert page.locator("#nav-sidebar").is_visible() == (sidebar == "sidebar-open")
        snap(page, f"long-labels-{name.replace(' ', '-')}-{sidebar}", full_page=True)
        found[name] = layout_problems(page)

    assert not any(found.values()), "\n".join(f"{name}: {problem}" for name in found for problem in found[name])


def test_the_open_button_shows_the_pk_as_it_is(page: Page) -> None:
    made = seed_long_labels()
    log_in(page)
    page.goto(object_history(made.tag))

    button = page.locator(".object-tools a", has_text="Open")
    assert str(made.tag.pk) in button.inner_text()  # innerText is what CSS shows: no upper-casing
    assert page.locator("h1").inner_text().endswith(f"Tag #{made.tag.pk}")


def test_the_admin_index_names_task_operations_once(page: Page) -> None:
    log_in(page)
    headings = page.locator("#content h1, #content h2, #content caption").all_inner_texts()
    assert [text for text in headings if text.strip().lower() == "task operations"] == ["TASK OPERATIONS"]
    assert page.locator("a.taskops-dashboardlink").count() == 1
