"""Results outside taskops' own handle: what a plain ``AsyncResult`` (and Flower, and a log) sees.

A task's result is stored by a real worker through the codec; then it is read
the ways code that does not know taskops reads it: Celery's own
``celery.result.AsyncResult`` on the stock ``django-db`` backend (a
reference that reads as what it stands for), and on the backend the README
documents, ``taskops.results:DatabaseBackend`` (the instance itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.result import AsyncResult
from django.conf import settings
from django_celery_results.models import TaskResult

from taskops.results import DatabaseBackend
from taskops.wire import MissingObjectError, RefListPlaceholder, RefPlaceholder, loads
from tests.conftest import WorkerProcess
from tests.testapp.models import Answer, Question
from tests.testapp.tasks import best_answer


@pytest.fixture
def reader() -> Iterator[Celery]:
    """A Celery app configured as the README says: the project's settings, and the resolving backend."""
    app = Celery("reader", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(result_backend="taskops.results:DatabaseBackend")
    yield app
    app.close()


def stored_best_answer() -> tuple[str, Answer]:
    question = Question.objects.create(title="Which?", body="b")
    Answer.objects.create(question=question, body="good", score=1)
    best = Answer.objects.create(question=question, body="best", score=5)
    result = best_answer.delay(question)
    assert result.get(timeout=60) == best  # taskops' own handle
    return result.id, best


def test_a_plain_async_result_on_the_documented_backend_returns_the_instance(
    worker: WorkerProcess, reader: Celery
) -> None:
    task_id, best = stored_best_answer()
    Answer.objects.filter(pk=best.pk).update(body="edited since")

    result: AsyncResult[Any] = AsyncResult(task_id, app=reader)
    value = result.get(timeout=10)

    assert type(result) is AsyncResult  # Celery's own class, nothing of taskops'
    assert isinstance(reader.backend, DatabaseBackend)
    assert isinstance(value, Answer)
    assert (value.pk, value.body) == (best.pk, "edited since")  # fetched by the reader, now


def test_a_plain_async_result_on_the_stock_backend_reads_as_the_reference(
    worker: WorkerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    task_id, best = stored_best_answer()

    value: Any = AsyncResult(task_id, app=best_answer.app).get(timeout=10)
    logging.getLogger("tests").warning("result: %s", value)

    assert value == RefPlaceholder(ref=value.ref)
    assert repr(value) == f"<testapp.answer:{best.pk}>"
    assert f"result: testapp.answer:{best.pk}" in caplog.text
    assert "RefPlaceholder" not in repr(value) + str(value)
    # What django-celery-results stores (and its admin shows): the codec's output, and Celery's reprs.
    row = TaskResult.objects.get(task_id=task_id)
    envelope = {"__type__": "taskops.model", "__value__": {"model": "testapp.answer", "pk": best.pk}}
    assert json.loads(row.result or "") == envelope
    assert json.loads(row.task_args or "") == "(<Question: Which?>,)"


def test_a_row_gone_before_the_read_raises_missing(worker: WorkerProcess, reader: Celery) -> None:
    task_id, best = stored_best_answer()
    gone = best.pk
    best.delete()

    with pytest.raises(MissingObjectError, match=rf"testapp\.answer:{gone}"):
        AsyncResult(task_id, app=reader).get(timeout=10)


def test_every_placeholder_reads_as_what_it_stands_for() -> None:
    decoded = loads(
        '[{"__type__": "taskops.models", "__value__": {"model": "testapp.answer", "pks": [3, 5]}},'
        ' {"__type__": "taskops.attrs", "__value__": {"class": "not.registered", "data": {}}},'
        ' {"__type__": "taskops.attrs",'
        ' "__value__": {"class": "tests.testapp.reports.ThreadReport", "data": {"n": 1}}}]'
    )
    refs, invalid, report = decoded

    assert isinstance(refs, RefListPlaceholder)
    assert (repr(refs), str(refs)) == ("<testapp.answer:[3, 5]>", "testapp.answer:[3, 5]")
    assert repr(invalid) == "<invalid: taskops.attrs: class 'not.registered' is not registered>"
    assert repr(report) == "<tests.testapp.reports.ThreadReport {'n': 1}>"
    assert settings.CELERY_RESULT_BACKEND == "django-db"  # the suite's own app keeps the stock backend
