"""Re-dispatch as an operator does it, in headless Chromium against the live server, with a real worker.

The generic form from the task to the tasks that ran; "Re-dispatch selected"
over a filtered changelist with "select all"; "Run a task for the selected
objects" from a model's changelist to the form; a large selection's
progress bar. The README's pictures of these pages come from here
(``TASKOPS_SCREENSHOTS=docs``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from celery import states
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from playwright.sync_api import Page, expect

from taskops import recording
from taskops.admin.redispatch import tickets
from taskops.models import Dispatch, Redispatch, RedispatchTicket
from tests.admin.layout import layout_problems
from tests.admin.redispatch.conftest import FORM, IDLE, QUESTIONS
from tests.admin.test_browser import log_in, seed_long_labels, snap
from tests.conftest import WorkerProcess, start_worker_process
from tests.polling import wait_for
from tests.testapp.models import Answer, Book, Question
from tests.testapp.reports import ReviewRequest
from tests.testapp.tasks import add, count_words, review_question, touch_book

#: A run of the worker, end to end (publish, receive, run, record).
RUN_TIMEOUT = 90
#: The queue of the large selection's fan-out (its own worker reads it).
FAN_OUT_QUEUE = "taskops-tests-ui-fan-out"


def pick(page: Page, name: str, term: str, label: str) -> None:
    """Search an object picker (the admin's select2 autocomplete) and choose the result with ``label``."""
    page.locator(f".field-{name} .select2-selection").click()
    page.keyboard.type(term)
    page.locator(".select2-results__option", has_text=label).click()


def succeeded(redispatch: Redispatch, count: int) -> bool:
    return Dispatch.objects.filter(operation=redispatch, state=states.SUCCESS).count() == count


def test_the_form_from_a_task_to_the_tasks_that_ran(page: Page, worker: WorkerProcess) -> None:
    questions = [Question.objects.create(title=f"Why is the cache stale on node {i}?", body="b") for i in range(3)]
    answer = Answer.objects.create(question=questions[0], body="Clear it after the commit.")
    due = dt.date.today() + dt.timedelta(days=7)
    earlier = review_question.delay(questions[0], ReviewRequest("bob", dt.date.today()), 1)  # changes its summary
    run_and_wait(earlier)
    log_in(page)

    page.goto(FORM)
    page.select_option("#id_task", review_question.name)  # redispatch.js chooses it: the form comes back for it
    expect(page.locator("#id_arg-copies")).to_be_visible()
    pick(page, "arg-question", "node 0", questions[0].title)
    pick(page, "arg-question", "node 2", questions[2].title)
    page.fill("#id_arg-review-reviewer", "ada")
    page.fill("#id_arg-review-due", "next week")
    pick(page, "arg-review-answer", "after the commit", "Clear it after the commit.")
    page.fill("#id_arg-copies", "2")
    page.fill("#id_reason", "The nightly reviews were lost when the broker restarted.")
    snap(page, "redispatch-form", full_page=True, readme=True)

    page.click("input[name=_preview]")  # the form's own check: a date it cannot read
    expect(page.locator("#taskops-errors-arg-review-due")).to_contain_text("Enter a valid date.")
    page.fill("#id_arg-review-due", due.isoformat())
    page.fill("#id_countdown", "-5")
    page.click("input[name=_preview]")  # the service's check, shown at its field
    expect(page.locator("#taskops-errors-countdown")).to_contain_text("between 0 and 604800")
    expect(page.locator("#taskops-errors-arg-review-due")).to_be_empty()
    snap(page, "redispatch-form-errors", full_page=True)

    page.fill("#id_countdown", "")
    page.click("input[name=_preview]")
    panel = page.locator("#taskops-preview-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".taskops-preview-object")).to_have_count(2)
    expect(panel).to_contain_text("2 calls of tests.testapp.tasks.review_question")
    first = panel.locator(".taskops-preview-object").first  # its last run changed its summary since
    expect(first.locator("[data-drift-now=changed]")).to_contain_text("summary")
    expect(first).to_contain_text(earlier.id[:8])
    expect(page.locator(".field-arg-question .select2-selection__choice")).to_have_count(2)  # the pickers kept
    expect(page.locator(".field-arg-review-answer .select2-selection__rendered")).to_contain_text("after the commit")
    snap(page, "redispatch-preview", full_page=True, readme=True)

    page.click(".taskops-confirm input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/taskops/redispatch/\d+/change/"))
    redispatch = Redispatch.objects.get()
    wait_for(lambda: succeeded(redispatch, 2), timeout=RUN_TIMEOUT, what="both calls to run in the worker")
    assert Question.objects.get(pk=questions[0].pk).summary == f"2 review(s) by ada, due {due}, on answer {answer.pk}"
    assert Question.objects.get(pk=questions[1].pk).summary == ""
    assert (redispatch.published, redispatch.reason) == (2, "The nightly reviews were lost when the broker restarted.")
    content_type = ContentType.objects.get_for_model(Redispatch)
    assert LogEntry.objects.filter(content_type=content_type, object_id=str(redispatch.pk)).count() == 1
    page.reload()
    expect(page.locator("#taskops-items .taskops-badge", has_text="Success")).to_have_count(2)


def run_and_wait(*results: Any) -> None:
    for result in results:
        wait_for(result.ready, timeout=RUN_TIMEOUT, what=f"{result.id} to finish")
    assert recording.flush()


def test_redispatch_selected_over_a_filtered_changelist_with_select_all(
    page: Page, worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin.site._registry[Dispatch], "list_per_page", 5)
    books = [Book.objects.create(title=f"Book {i}") for i in range(6)]
    run_and_wait(
        *(touch_book.delay(book) for book in books),
        add.delay(1, 2),  # succeeded, but re-dispatch does not allow it: skipped
        *(count_words.delay("testapp.question", 999_999) for _ in range(2)),  # failed: not in the filter
    )
    wait_for(lambda: Dispatch.objects.filter(state=states.SUCCESS).count() == 7, what="the sources to be recorded")
    Book.objects.filter(pk__in=[books[0].pk, books[1].pk]).update(title="Renamed since")  # and their runs: pages
    log_in(page)

    page.goto("/admin/taskops/dispatch/?state__exact=SUCCESS")
    page.check("#action-toggle")
    page.click(".actions .question a")  # "Select all 7 dispatches"
    page.select_option("select[name=action]", "redispatch_selected")
    page.click("button[name=index]")

    expect(page.locator(".taskops-replay-summary")).to_contain_text("Publish 7 dispatches again")
    expect(page.locator("#taskops-skips")).to_contain_text("1 call: the task may not be re-dispatched")
    expect(page.locator(".taskops-replay-row")).to_have_count(7)
    now = page.locator(".taskops-replay-row td[data-drift-now=changed]")
    expect(now).to_have_count(6)  # each run counted a visit: pages changed since
    expect(page.locator(".taskops-replay-row", has_text="title")).to_have_count(2)  # renamed too
    assert page.locator("input[name=select_across]").input_value() == "1"
    snap(page, "redispatch-replay-confirmation", full_page=True, readme=True)
    page.fill("#id_reason", "The mail server was down.")
    page.click("input[value='Yes, re-dispatch']")

    page.wait_for_url(re.compile(r"/admin/taskops/redispatch/\d+/change/"))
    redispatch = Redispatch.objects.get()
    assert (redispatch.total, redispatch.published, redispatch.skipped) == (7, 6, 1)
    wait_for(lambda: succeeded(redispatch, 6), timeout=RUN_TIMEOUT, what="the replays to run")
    assert sorted(Book.objects.values_list("pages", flat=True)) == [2] * 6
    assert Dispatch.objects.filter(operation=redispatch, redispatch_of__isnull=False).count() == 6


def test_run_a_task_for_objects_selected_on_their_changelist(page: Page, published: list[Any]) -> None:
    questions = [Question.objects.create(title=f"Selected question {i}", body="b") for i in range(3)]
    Question.objects.create(title="Not selected", body="b")
    log_in(page)

    page.goto(QUESTIONS)
    for question in questions:
        page.check(f"input.action-select[value='{question.pk}']")
    page.select_option("select[name=action]", "taskops_run_task")
    page.click("button[name=index]")

    page.wait_for_url(re.compile(r"/admin/taskops/dispatch/redispatch/\?selection="))
    assert list(parse_qs(urlparse(page.url).query)) == ["selection"]  # the pks stay on the server
    expect(page.locator("#taskops-task .taskops-selection")).to_contain_text("3 questions selected")
    page.select_option("#id_task", review_question.name)
    expect(page.locator("#id_arg-copies")).to_be_visible()
    expect(page.locator("#id_arg-question")).to_have_count(0)  # the selection takes the objects' place
    page.fill("#id_arg-review-reviewer", "grace")
    page.fill("#id_arg-review-due", dt.date.today().isoformat())
    page.fill("#id_arg-copies", "1")
    page.fill("#id_queue", IDLE)
    page.fill("#id_reason", "A reviewer left.")
    page.click("input[name=_preview]")
    expect(page.locator(".taskops-preview-object")).to_have_count(3)
    page.click(".taskops-confirm input[type=submit]")

    page.wait_for_url(re.compile(r"/admin/taskops/redispatch/\d+/change/"))
    redispatch = Redispatch.objects.get()
    assert (redispatch.total, redispatch.published) == (3, 3)
    assert sorted(int(t) for t in redispatch.items.values_list("target", flat=True)) == sorted(q.pk for q in questions)
    assert [headers["task"] for headers in published] == [review_question.name] * 3
    assert not RedispatchTicket.objects.exists()  # the selection and the confirmation, used up


@pytest.fixture
def fan_out_worker(live_server: Any) -> Iterator[WorkerProcess]:
    """A worker of its own for the fan-out, started on this test's database.

    The session's worker caches content type ids, which a transactional test's
    flush renumbers: the refs of what it publishes itself would not be recorded.
    """
    worker = start_worker_process(f"--queues={FAN_OUT_QUEUE}", concurrency=1)
    yield worker
    worker.stop()


@override_settings(TASKOPS={"REDISPATCH_BACKGROUND_OVER": 5, "REDISPATCH_QUEUE": FAN_OUT_QUEUE})
def test_a_large_selection_shows_its_progress_until_done(
    page: Page, fan_out_worker: WorkerProcess, published: Any
) -> None:
    Question.objects.bulk_create(Question(title=f"Question {i:02}", body="b") for i in range(40))
    log_in(page)
    page.goto(QUESTIONS)
    page.check("#action-toggle")
    page.select_option("select[name=action]", "taskops_run_task")
    page.click("button[name=index]")
    page.select_option("#id_task", review_question.name)
    expect(page.locator("#id_arg-copies")).to_be_visible()
    page.fill("#id_arg-review-reviewer", "lin")
    page.fill("#id_arg-review-due", dt.date.today().isoformat())
    page.fill("#id_arg-copies", "1")
    page.fill("#id_queue", IDLE)  # the calls wait in a queue no worker reads: the fan-out is what runs
    page.fill("#id_reason", "Quarterly review of every open question.")
    page.click("input[name=_preview]")
    expect(page.locator("#taskops-preview-panel")).to_contain_text("in the background")
    page.click(".taskops-confirm input[type=submit]")

    page.wait_for_url(re.compile(r"/admin/taskops/redispatch/\d+/change/"))
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.headers.get("hx-request") else None)
    expect(page.locator("#taskops-progress")).to_have_attribute("data-settled", "true", timeout=RUN_TIMEOUT * 1000)
    expect(page.locator(".taskops-percent")).to_have_text("100 %")
    assert page.locator("#taskops-progress-bar").get_attribute("value") == "40"
    snap(page, "redispatch-progress", readme=True)
    seen = len(polls)
    page.wait_for_timeout(2_500)
    assert len(polls) == seen  # settled: the poll was told to stop
    assert seen >= 1  # it did poll before
    redispatch = Redispatch.objects.get()
    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.DONE, 40)
    assert Dispatch.objects.filter(operation=redispatch, task_name=review_question.name).count() == 40
    assert "being recorded" not in page.content()  # it waited for them
    fan_out = Dispatch.objects.get(task_name="taskops.redispatch.fan_out")
    assert f"fan_out[{fan_out.task_id}] succeeded" in fan_out_worker.log()  # in the background, by a real worker


def test_the_pages_hold_up_under_long_labels(page: Page, published: list[Any]) -> None:
    made = seed_long_labels()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page)
    found: dict[str, list[str]] = {}

    operator = User.objects.get(username="operator")
    token = tickets.keep_selection(operator, Question.objects.filter(pk__in=[made.unbroken.pk, made.wordy.pk]))
    page.goto(f"{FORM}?selection={token}&task={review_question.name}")
    page.fill("#id_arg-review-reviewer", "ada")
    page.fill("#id_arg-review-due", dt.date.today().isoformat())
    page.fill("#id_arg-copies", "1")
    page.fill("#id_queue", IDLE)
    page.fill("#id_reason", made.wordy.title)
    page.click("input[name=_preview]")
    expect(page.locator(".taskops-preview-object")).to_have_count(2)
    found["form and preview"] = layout_problems(page)
    snap(page, "redispatch-long-labels-preview", full_page=True)

    page.goto("/admin/taskops/dispatch/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "redispatch_selected")
    page.click("button[name=index]")
    expect(page.locator(".taskops-replay-row")).to_have_count(Dispatch.objects.count())
    found["confirmation"] = layout_problems(page)
    snap(page, "redispatch-long-labels-confirmation", full_page=True)
    page.fill("#id_reason", made.wordy.title)
    page.fill("#id_queue", IDLE)
    page.click("input[value='Yes, re-dispatch']")

    page.wait_for_url(re.compile(r"/admin/taskops/redispatch/\d+/change/"))
    expect(page.locator("#taskops-progress")).to_have_attribute("data-settled", "true")
    found["progress"] = layout_problems(page)
    snap(page, "redispatch-long-labels-progress", full_page=True)

    assert not any(found.values()), "\n".join(f"{name}: {problem}" for name in found for problem in found[name])
