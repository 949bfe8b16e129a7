"""The Dispatch changelist, detail and per-object history, through the admin's own views."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.contrib.admin.utils import quote as admin_quote
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from taskops.admin import DispatchAdmin
from taskops.models import Dispatch, Drift, State
from taskops.paginator import EstimatedCountPaginator, table_row_estimate
from tests.factories import attrs_envelope, make_dispatch, model_envelope, models_envelope
from tests.testapp.models import Answer, Book, Question

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:taskops_dispatch_changelist")


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def history_url(obj: Any) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return reverse("admin:taskops_dispatch_object_history", args=[content_type.pk, obj.pk])


def result_task_ids(html: str) -> list[str]:
    """Short task ids shown in the changelist's rows, in order."""
    return re.findall(r'<span class="taskops-quiet">([0-9a-f]{8})', html)


@pytest.fixture
def question() -> Question:
    return Question.objects.create(title="Why does my task see stale data today?", body="It reads too early.")


# --- changelist ---------------------------------------------------------------


def test_changelist_shows_decoded_refs_linked_to_their_admin_pages(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"], lag=dt.timedelta(seconds=12))

    html = admin_client.get(CHANGELIST).content.decode()

    assert dispatch.task_name in html
    assert f'<a href="{change_url(question)}">Question #{question.pk}</a>' in html
    assert "\u2013 Why does my task see stale…" in html  # object_repr, first words
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

    assert html.count('<span class="taskops-ref">') == 3
    assert "&lt;br&gt;" not in html
    assert "+2 more" in html


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("changed", {"changed"}),
        ("missing", {"missing", "race"}),
        ("race", {"race"}),
        ("unchanged", {"unchanged"}),
    ],
)
def test_drift_filter(admin_client: Client, question: Question, param: str, expected: set[str]) -> None:
    made = {
        "changed": make_dispatch(question, drift=Drift.CHANGED, changed_fields=["title"]),
        "missing": make_dispatch(question, drift=Drift.MISSING),
        "race": make_dispatch(question, drift=Drift.MISSING, likely_race=True),
        "unchanged": make_dispatch(question, drift=Drift.UNCHANGED),
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


# --- fast on big tables ---------------------------------------------------------------


def make_rows(count: int, refs_each: int) -> None:
    questions = [Question.objects.create(title=f"Question {i}", body="b") for i in range(refs_each)]
    for _ in range(count):
        make_dispatch(*questions, drift=Drift.CHANGED, changed_fields=["body"])


@pytest.mark.parametrize(("rows", "refs_each"), [(3, 1), (50, 4)])
def test_changelist_queries_do_not_grow_with_rows_or_refs(
    admin_client: Client, django_assert_max_num_queries: Any, rows: int, refs_each: int
) -> None:
    make_rows(rows, refs_each)
    admin_client.get(CHANGELIST)  # warm the content-type cache, as in any running process

    with django_assert_max_num_queries(6):
        response = admin_client.get(CHANGELIST)

    assert len(result_task_ids(response.content.decode())) == rows


def test_changelist_never_counts_the_whole_table(admin_client: Client) -> None:
    make_rows(3, 1)
    unfiltered_count = re.compile(r'SELECT COUNT\(\*\)(?:(?!LIMIT).)*FROM "taskops_dispatch"(?:(?!LIMIT).)*$', re.S)

    with CaptureQueriesContext(connection) as queries:
        admin_client.get(CHANGELIST)
        admin_client.get(CHANGELIST, {"drift": "changed"})

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the paginator must count something"
    assert all("LIMIT" in sql.upper() for sql in counts)
    assert not [sql for sql in counts if unfiltered_count.search(sql)]


def test_paginator_caps_counting_and_says_so(admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EstimatedCountPaginator, "count_limit", 4)
    monkeypatch.setattr(DispatchAdmin, "list_per_page", 2)
    make_rows(6, 1)

    html = admin_client.get(CHANGELIST).content.decode()

    assert "more than 4 dispatches" in html
    paginator = EstimatedCountPaginator(Dispatch.objects.all(), 2)
    assert paginator.count == 5
    assert paginator.capped
    small = EstimatedCountPaginator(Dispatch.objects.filter(pk__lt=0), 2)
    assert small.count == 0
    assert not small.capped
    assert not small.estimated


def test_table_estimate_only_on_postgresql() -> None:
    make_rows(3, 1)
    estimate = table_row_estimate(Dispatch.objects.all())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE taskops_dispatch")
        assert table_row_estimate(Dispatch.objects.all()) == 3
    else:
        assert estimate is None


def test_object_links_match_reverse_for_awkward_primary_keys() -> None:
    from django.contrib import admin

    from taskops.display import Linker

    linker = Linker(admin.site, None)
    for pk in ["42", "a b/c_d?e#f", "ünï%cödé"]:
        expected = reverse("admin:taskops_dispatch_object_history", args=[7, admin_quote(pk)])
        assert linker.history_url(7, pk) == expected
        assert linker._patterns.url("admin:auth_user_change", pk) == reverse(
            "admin:auth_user_change", args=[admin_quote(pk)]
        )
    assert linker._patterns.url("admin:testapp_book_change", "1") is None  # not registered


# --- read-only --------------------------------------------------------------------------


def test_dispatches_cannot_be_added_or_changed(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)

    assert admin_client.get(reverse("admin:taskops_dispatch_add")).status_code == 403
    response = admin_client.post(change_url(dispatch), {"task_name": "evil", "state": "SUCCESS"})
    dispatch.refresh_from_db()
    assert response.status_code == 403
    assert dispatch.task_name == "tests.testapp.tasks.moderate_answer"


def test_superuser_can_delete_a_dispatch(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)

    response = admin_client.post(reverse("admin:taskops_dispatch_delete", args=[dispatch.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Dispatch.objects.filter(pk=dispatch.pk).exists()


# --- detail -----------------------------------------------------------------------------


def test_detail_pretty_prints_arguments_with_envelopes_decoded(admin_client: Client, question: Question) -> None:
    answers = [Answer.objects.create(question=question, body=f"answer {i}") for i in range(2)]
    kwargs = {
        "report": attrs_envelope(
            "tests.testapp.reports.ThreadReport",
            {
                "question": model_envelope(question),
                "requested_at": {"__type__": "datetime", "__value__": "2025-01-02T03:04:05+00:00"},
                "budget": {"__type__": "decimal", "__value__": "12.50"},
                "token": {"__type__": "uuid", "__value__": {"hex": "0123456789abcdef0123456789abcdef"}},
                "note": "<script>alert(1)</script>",
            },
        )
    }
    dispatch = make_dispatch(
        question, *answers, args=[model_envelope(question), models_envelope(answers)], kwargs=kwargs
    )

    html = admin_client.get(change_url(dispatch)).content.decode()

    assert f'<a href="{change_url(question)}">Question #{question.pk}</a>' in html
    assert "testapp.answer \u00d72" in html
    for answer in answers:
        assert f'<a href="{change_url(answer)}">Answer #{answer.pk}</a>' in html
    assert '<span class="taskops-json-type">tests.testapp.reports.ThreadReport</span>' in html
    assert '<span class="taskops-json-type">datetime</span> 2025-01-02T03:04:05+00:00' in html
    assert '<span class="taskops-json-type">decimal</span> 12.50' in html
    assert '<span class="taskops-json-type">uuid</span> 0123456789abcdef0123456789abcdef' in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Exact encoded JSON, as sent" in html
    assert json.loads(dispatch.kwargs) == kwargs


def test_detail_shows_drift_with_old_and_current_values(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(
        question, drift=Drift.CHANGED, changed_fields=["title", "body"], values={"title": "Old title"}
    )
    Question.objects.filter(pk=question.pk).update(title="New title", body="New body")
    gone = Question.objects.create(title="Soon deleted")
    missing = make_dispatch(gone, drift=Drift.MISSING)
    gone.delete()

    html = admin_client.get(change_url(dispatch)).content.decode()
    missing_html = admin_client.get(change_url(missing)).content.decode()

    assert '<code>title</code>:\n              <span class="taskops-old">Old title</span>' in html
    assert '<span class="taskops-new">New title</span>' in html
    assert '<span class="taskops-new">New body</span>' in html
    assert "(not kept)" in html  # body: only a digest was kept
    assert "(no longer exists)" in missing_html
    assert "missing</span>" in missing_html


def test_detail_shows_timeline_result_and_workflow(admin_client: Client, question: Question) -> None:
    root = make_dispatch(question, task_name="tests.testapp.tasks.rebuild_summary")
    dispatch = make_dispatch(
        question,
        state=State.FAILURE,
        parent_id=root.task_id,
        root_id=root.task_id,
        retries=2,
        eta=timezone.now(),
        lag=dt.timedelta(seconds=3),
    )
    child = make_dispatch(question, task_name="tests.testapp.tasks.flag_comment", parent_id=dispatch.task_id)
    TaskResult.objects.create(
        task_id=dispatch.task_id,
        status="FAILURE",
        result=json.dumps({"exc_type": "ValueError", "exc_message": ["boom"]}),
        traceback='Traceback (most recent call last):\n  File "tasks.py"\nValueError: boom',
    )

    html = admin_client.get(change_url(dispatch)).content.decode()

    for label in ("Enqueued", "ETA", "Received by a worker", "Started", "Finished", "Retries"):
        assert f"<th>{label}</th>" in html
    assert "3 attempts" in html
    assert "+3.00 s" in html  # started, after enqueue
    assert "ValueError: boom" in html
    assert "&quot;exc_type&quot;: &quot;ValueError&quot;" in html
    assert f'<a href="{change_url(root)}">tests.testapp.tasks.rebuild_summary</a>' in html  # parent and root
    assert f'<a href="{change_url(child)}">tests.testapp.tasks.flag_comment</a>' in html


def test_detail_without_result_or_refs(admin_client: Client) -> None:
    dispatch = make_dispatch(task_name="tests.testapp.tasks.count_words", args=["testapp.question", 1])

    html = admin_client.get(change_url(dispatch)).content.decode()

    assert "No result stored for this task id" in html
    assert "The arguments referenced no model instance." in html
    assert '<span class="taskops-json-string">&quot;testapp.question&quot;</span>' in html


def test_detail_queries_are_bounded(
    admin_client: Client, question: Question, django_assert_max_num_queries: Any
) -> None:
    answers = [Answer.objects.create(question=question, body=f"a{i}") for i in range(10)]
    dispatch = make_dispatch(question, *answers, drift=Drift.CHANGED, changed_fields=["body"])
    admin_client.get(change_url(dispatch))

    with django_assert_max_num_queries(14):
        admin_client.get(change_url(dispatch))


# --- per-object history -------------------------------------------------------------------


def test_object_history_lists_dispatches_newest_first_paginated(
    admin_client: Client, question: Question, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DispatchAdmin, "history_per_page", 2)
    now = timezone.now()
    made = [make_dispatch(question, enqueued_at=now - dt.timedelta(minutes=m)) for m in (5, 3, 1)]
    make_dispatch(Question.objects.create(title="unrelated"))

    first = admin_client.get(history_url(question)).content.decode()
    second = admin_client.get(history_url(question), {"p": 2}).content.decode()

    assert result_task_ids(first) == [made[2].task_id[:8], made[1].task_id[:8]]
    assert result_task_ids(second) == [made[0].task_id[:8]]
    assert "3 dispatches" in first
    assert f'<a href="{change_url(question)}">Question #{question.pk}</a>' in first


def test_object_history_of_a_deleted_object(admin_client: Client) -> None:
    gone = Question.objects.create(title="Deleted meanwhile")
    make_dispatch(gone, drift=Drift.MISSING)
    url = history_url(gone)
    gone.delete()

    html = admin_client.get(url).content.decode()

    assert "no longer exists" in html
    assert "Deleted meanwhile" in html  # the repr the dispatch recorded


def test_object_history_unknown_content_type_is_404(admin_client: Client) -> None:
    url = reverse("admin:taskops_dispatch_object_history", args=[999_999, "1"])
    assert admin_client.get(url).status_code == 404


def test_history_queries_are_bounded(
    admin_client: Client, question: Question, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        make_dispatch(question)
    admin_client.get(history_url(question))

    with django_assert_max_num_queries(6):
        admin_client.get(history_url(question))


def test_every_change_form_links_to_its_task_history(admin_client: Client, question: Question) -> None:
    html = admin_client.get(change_url(question)).content.decode()

    assert f'<a href="{history_url(question)}" class="taskops-historylink">Task history</a>' in html


def test_dispatch_change_form_has_no_task_history_tool(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)
    assert "taskops-historylink" not in admin_client.get(change_url(dispatch)).content.decode()


def test_admin_index_links_to_the_dashboard(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("admin:taskops_dispatch_dashboard")}"' in html
    app_html = admin_client.get(reverse("admin:app_list", args=["testapp"])).content.decode()
    assert "taskops-index" not in app_html


def test_staff_without_permission_sees_no_taskops_links(client: Client, question: Question) -> None:
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_question", "change_question"]))
    client.force_login(user)

    assert "taskops-historylink" not in client.get(change_url(question)).content.decode()
    assert "taskops-dashboardlink" not in client.get(reverse("admin:index")).content.decode()
