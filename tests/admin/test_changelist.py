"""The Dispatch changelist: rows with their refs, filters, search, queries per page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskops.models import Drift, State
from tests.admin.helpers import CHANGELIST, change_url, history_url, make_rows, result_task_ids
from tests.factories import make_dispatch
from tests.testapp.models import Answer, Book, Question

pytestmark = pytest.mark.django_db


def test_changelist_shows_decoded_refs_linked_to_their_admin_pages(admin_client: Client, question: Question) -> None:
    make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"], lag=dt.timedelta(seconds=12))

    html = admin_client.get(CHANGELIST).content.decode()

    assert "tests.<wbr>testapp.<wbr>tasks.<wbr>moderate_<wbr>answer" in html  # wraps after a dot, not in a word
    assert f'<a href="{change_url(question)}">Question #{question.pk}</a>' in html
    # The whole str() is sent, cut on screen by an ellipsis, and whole in its title.
    assert f'title="{question.title}">{question.title}</span>' in html
    assert f'href="{history_url(question)}"' in html
    assert "changed</span>" in html
    assert "body" in html
    assert "12 s" in html  # lag
    assert "celery@web-1" in html  # worker


def test_ref_to_a_model_without_admin_is_shown_without_link(admin_client: Client) -> None:
    book = Book.objects.create(title="Designing Data-Intensive Applications")
    make_dispatch(book)

    html = admin_client.get(CHANGELIST).content.decode()

    assert f"Book #{book.pk}" in html
    assert f'">Book #{book.pk}</a>' not in html
    assert f'href="{history_url(book)}"' in html


def test_changelist_shows_at_most_three_refs_per_row(admin_client: Client) -> None:
    answers = [Answer.objects.create(question=Question.objects.create(title=f"q{i}"), body="b") for i in range(5)]
    make_dispatch(*answers)

    html = admin_client.get(CHANGELIST).content.decode()

    assert html.count('<span class="taskops-ref-line">') == 3
    assert "&lt;br&gt;" not in html
    assert "+2 more" in html


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("changed", {"changed"}),
        ("missing", {"missing", "race"}),
        ("race", {"race"}),
        ("unchanged", {"unchanged"}),
        ("pending", {"waiting", "running"}),
    ],
)
def test_drift_filter(admin_client: Client, question: Question, param: str, expected: set[str]) -> None:
    made = {
        "changed": make_dispatch(question, drift=Drift.CHANGED, changed_fields=["title"]),
        "missing": make_dispatch(question, drift=Drift.MISSING),
        "race": make_dispatch(question, drift=Drift.MISSING, likely_race=True),
        "unchanged": make_dispatch(question, drift=Drift.UNCHANGED),
        # Not checked yet: work that will be judged, unfinished and with objects.
        "waiting": make_dispatch(question, state=State.PENDING),
        "running": make_dispatch(question, state=State.STARTED, drift=Drift.PENDING),
        # Never to be judged: finished without a verdict (stopped before reading its rows).
        "stopped": make_dispatch(question, state=State.FAILURE, drift=Drift.PENDING),
        # Nothing to judge: no objects ("unchanged" once started, as the recorder writes it).
        "no objects, finished": make_dispatch(task_name="tests.testapp.tasks.count_words"),
        "no objects, waiting": make_dispatch(task_name="tests.testapp.tasks.count_words", state=State.PENDING),
    }

    html = admin_client.get(CHANGELIST, {"drift": param}).content.decode()

    shown = set(result_task_ids(html))
    assert shown == {made[name].task_id[:8] for name in expected}


def test_task_name_filter_offers_registered_tasks_without_scanning_the_table(admin_client: Client) -> None:
    counted = make_dispatch(task_name="tests.testapp.tasks.count_words")
    make_dispatch(task_name="tests.testapp.tasks.flag_comment")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST)
    filtered = admin_client.get(CHANGELIST, {"task": "tests.testapp.tasks.count_words"}).content.decode()

    html = response.content.decode()
    assert "?task=tests.testapp.tasks.moderate_answer" in html  # registered, never dispatched: still offered
    assert "?task=celery.chord_unlock" not in html
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]
    assert result_task_ids(filtered) == [counted.task_id[:8]]


def test_state_queue_hazard_lag_and_date_filters(admin_client: Client, question: Question) -> None:
    old = make_dispatch(question, enqueued_at=timezone.now() - dt.timedelta(days=40), lag=dt.timedelta(minutes=20))
    failed = make_dispatch(question, state=State.FAILURE, queue="mail", lag=dt.timedelta(seconds=3))
    hazard = make_dispatch(question, in_transaction=True, lag=dt.timedelta(milliseconds=10))
    pending = make_dispatch(question, state=State.PENDING)

    def shown(**params: str) -> set[str]:
        return set(result_task_ids(admin_client.get(CHANGELIST, params).content.decode()))

    assert shown(state__exact="FAILURE") == {failed.task_id[:8]}
    assert shown(queue="mail") == {failed.task_id[:8]}
    assert shown(in_transaction__exact="1") == {hazard.task_id[:8]}
    assert shown(lag="gt10m") == {old.task_id[:8]}
    assert shown(lag="1-10s") == {failed.task_id[:8]}
    assert shown(lag="lt1s") == {hazard.task_id[:8]}
    assert shown(lag="none") == {pending.task_id[:8]}
    since = str(timezone.now() - dt.timedelta(days=7))
    assert old.task_id[:8] not in shown(enqueued_at__gte=since)
    assert len(shown(enqueued_at__gte=since)) == 3


def test_search_by_task_id_task_name_and_object(admin_client: Client, question: Question) -> None:
    other = Question.objects.create(title="Other")
    by_question = make_dispatch(question, task_name="tests.testapp.tasks.notify_followers")
    by_other = make_dispatch(other, task_name="tests.testapp.tasks.count_words")
    answer = Answer.objects.create(question=other, body="x")
    by_answer = make_dispatch(answer)

    def found(term: str) -> set[str]:
        return set(result_task_ids(admin_client.get(CHANGELIST, {"q": term}).content.decode()))

    assert found(by_other.task_id) == {by_other.task_id[:8]}
    assert found("notify_followers") == {by_question.task_id[:8]}
    assert found(f"testapp.question:{question.pk}") == {by_question.task_id[:8]}
    assert found(f"Testapp.Answer:{answer.pk}") == {by_answer.task_id[:8]}
    assert found(str(other.pk)) >= {by_other.task_id[:8]}
    assert found("nosuchapp.model:1") == set()


@pytest.mark.parametrize(("rows", "refs_each"), [(3, 1), (50, 4)])
def test_changelist_queries_do_not_grow_with_rows_or_refs(
    admin_client: Client, django_assert_max_num_queries: Any, rows: int, refs_each: int
) -> None:
    make_rows(rows, refs_each)
    admin_client.get(CHANGELIST)  # warm the content-type cache, as in any running process

    with django_assert_max_num_queries(6):
        response = admin_client.get(CHANGELIST)

    assert len(result_task_ids(response.content.decode())) == rows
