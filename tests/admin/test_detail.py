"""The dispatch detail page: arguments, refs now, timeline, result, workflow."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from taskops.models import Drift, State
from tests.admin.helpers import change_url
from tests.factories import attrs_envelope, make_dispatch, model_envelope, models_envelope
from tests.testapp.models import Answer, Question

pytestmark = pytest.mark.django_db


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


@override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["title", "summary"]}})
def test_detail_shows_drift_with_old_and_current_values(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(
        question, drift=Drift.CHANGED, changed_fields=["title", "body", "summary"], values={"title": "Old title"}
    )
    Question.objects.filter(pk=question.pk).update(title="New title", body="New body", summary="New summary")
    gone = Question.objects.create(title="Soon deleted")
    missing = make_dispatch(gone, drift=Drift.MISSING)
    gone.delete()

    html = admin_client.get(change_url(dispatch)).content.decode()
    missing_html = admin_client.get(change_url(missing)).content.decode()

    assert re.search(r'<code>title</code>:\s*<span class="taskops-old">Old title</span>', html)
    assert '<span class="taskops-new">New title</span>' in html
    assert re.search(r'<code>summary</code>:\s*<span class="taskops-quiet"[^>]*>\(not kept\)', html)
    assert '<span class="taskops-new">New summary</span>' in html
    # body: not named by SNAPSHOT_VALUE_FIELDS, so neither then nor now
    assert re.search(r'<code>body</code>:\s*<span class="taskops-quiet"[^>]*>\(value not shown\)', html)
    assert "New body" not in html
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
