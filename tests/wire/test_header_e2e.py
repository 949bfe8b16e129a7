"""End to end with the real worker: a header the worker cannot read is recorded, never crashed on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish

from taskops.models import Dispatch, Drift, State
from taskops.wire import HEADER
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.testapp.models import Book, Question
from tests.testapp.tasks import count_refs

Forgery = Callable[[dict[str, Any]], None]


@pytest.fixture
def forge_header() -> Iterator[Callable[[Forgery], None]]:
    """Change the ``taskops`` header after taskops wrote it, as another publisher version would."""
    forgeries: list[Forgery] = []

    def receiver(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if headers is not None and HEADER in headers:
            for forge in forgeries:
                forge(headers[HEADER])

    # Connected after taskops' own receiver (at app ready), so it runs after it.
    before_task_publish.connect(receiver, weak=False, dispatch_uid="tests.forge_header")
    yield forgeries.append
    before_task_publish.disconnect(dispatch_uid="tests.forge_header")


def finished(task_id: str) -> Dispatch | None:
    return Dispatch.objects.filter(task_id=task_id, state__in=[State.SUCCESS, State.FAILURE]).first()


def test_a_header_of_an_unknown_version_is_recorded(worker: WorkerProcess, forge_header: Any) -> None:
    forge_header(lambda header: header.update(v=99))
    book = Book.objects.create(title="b")

    result = count_refs.delay([], [book])

    assert result.get(timeout=60) == 1  # the task ran
    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")
    assert row.state == State.SUCCESS
    assert "taskops header version 99 is not understood" in row.notes
    assert row.drift == Drift.PENDING  # nothing was judged: "not checked", not "unchanged"
    assert worker.is_alive()


def test_malformed_fields_are_recorded_and_the_readable_refs_judged(worker: WorkerProcess, forge_header: Any) -> None:
    def break_some(header: dict[str, Any]) -> None:
        header.update(enqueued_at="x", refs=[*header["refs"], [1], "nothing"])

    forge_header(break_some)
    question = Question.objects.create(title="q", body="old")
    book = Book.objects.create(title="b")

    result = count_refs.apply_async(([question], [book]), countdown=1)
    question.body = "new"
    question.save()

    assert result.get(timeout=60) == 2
    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")
    assert row.state == State.SUCCESS
    assert "enqueued_at 'x' is not a time" in row.notes
    assert "refs[2] [1] is not [label, pk, argument, digests]" in row.notes
    assert "refs[3] 'nothing'" in row.notes
    drifts = dict(row.refs.values_list("argument", "drift"))
    assert drifts == {"args[0][0]": Drift.CHANGED, "args[1][0]": Drift.UNCHANGED}
    assert row.drift == Drift.CHANGED
