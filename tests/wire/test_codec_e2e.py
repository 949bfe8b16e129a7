"""End to end: model instances and attrs objects cross a real broker to a real worker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from celery import chain, chord, group, states
from celery.exceptions import ChordError
from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from taskops.celery import TaskSkipped
from taskops.wire import CodecError, MissingObjectError
from taskops.wire.lanes import lane_of
from tests.celery_app import app
from tests.conftest import WorkerProcess
from tests.testapp.models import Answer, Question
from tests.testapp.reports import ThreadReport
from tests.testapp.tasks import best_answer, count_words, moderate_answer, rebuild_summary, summarize_thread, total

#: ETA far enough for the test to change rows between dispatch and run.
COUNTDOWN = 1


def envelope(marker: str, value: Any) -> dict[str, Any]:
    return {"__type__": marker, "__value__": value}


def thread(answers: int = 3) -> tuple[Question, list[Answer]]:
    question = Question.objects.create(title="Fresh?", body="old body")
    return question, [Answer.objects.create(question=question, body=f"answer {i}", score=i) for i in range(answers)]


def test_instance_and_list_arrive_fresh(worker: WorkerProcess) -> None:
    question, answers = thread()
    result = rebuild_summary.apply_async((question, answers[::-1]), countdown=COUNTDOWN)
    Question.objects.filter(pk=question.pk).update(title="Edited after dispatch")
    Answer.objects.filter(pk=answers[0].pk).update(body="edited too")

    summary = result.get(timeout=60)

    assert summary.splitlines() == [
        "3 answer(s) to: Edited after dispatch",
        "- (2) answer 2",
        "- (1) answer 1",
        "- (0) edited too",
    ]
    question.refresh_from_db()
    assert question.summary == summary


def test_attrs_object_with_datetime_and_ref(worker: WorkerProcess) -> None:
    question, answers = thread()
    requested = timezone.now()

    result = summarize_thread.delay(ThreadReport(question=question, requested_at=requested, top_n=1, note="hi"))

    assert result.get(timeout=60) == {
        "question": question.pk,
        "requested_at": requested.isoformat(),
        "top_answers": [answers[2].pk],
        "words": 2,
        "note": "hi",
    }


def test_chain_carries_refs_to_its_next_step_and_a_result_comes_back_as_an_instance(worker: WorkerProcess) -> None:
    question, answers = thread()

    result = chain(rebuild_summary.si(question, answers), best_answer.si(question)).delay()

    best = result.get(timeout=60)
    assert isinstance(best, Answer)
    assert best == answers[2]
    assert best.body == "answer 2"


def test_group_of_instances(worker: WorkerProcess) -> None:
    _, answers = thread(2)
    Answer.objects.filter(pk=answers[1].pk).update(body="buy viagra")

    assert group(moderate_answer.s(answer) for answer in answers).delay().get(timeout=60) == ["approved", "rejected"]


def test_deleted_row_fails_by_default(worker: WorkerProcess) -> None:
    question, answers = thread()
    result = rebuild_summary.apply_async((question, answers), countdown=COUNTDOWN)
    gone = answers[1].pk
    answers[1].delete()

    with pytest.raises(MissingObjectError, match=f"testapp.answer:{gone}"):
        result.get(timeout=60)
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "FAILURE"
    assert f"testapp.answer:{gone}" in stored.result


def test_deleted_row_is_skipped_where_the_task_says_so(worker: WorkerProcess) -> None:
    _, answers = thread(1)
    result = moderate_answer.apply_async((answers[0],), countdown=COUNTDOWN)
    gone = answers[0].pk
    answers[0].delete()

    with pytest.raises(TaskSkipped, match=f"testapp.answer:{gone}"):
        result.get(timeout=60)
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == states.REVOKED
    assert f"testapp.answer:{gone}" in json.loads(stored.result)["exc_message"][0]
    assert (
        f"skipped: tests.testapp.tasks.moderate_answer: referenced object(s) no longer exist: testapp.answer:{gone}"
        in worker.log()
    )


def test_a_skipped_chord_member_ends_the_chord_instead_of_leaving_it_waiting(worker: WorkerProcess) -> None:
    _, answers = thread(2)
    header = [moderate_answer.s(answer).set(countdown=COUNTDOWN) for answer in answers]
    result = chord(header)(total.s())
    gone = answers[0].pk
    answers[0].delete()

    # Celery's answer for a chord member that did not run (as for a revoked one): the body fails.
    # (Waiting on the body alone: its parents' errors would be raised before it ends.)
    with pytest.raises(ChordError, match=rf"TaskSkipped\(.*testapp\.answer:{gone}"):
        result.get(timeout=30, follow_parents=False)
    assert TaskResult.objects.get(task_id=result.id).status == states.FAILURE


def test_forged_class_fails_the_task_with_the_codec_error_and_the_worker_goes_on(worker: WorkerProcess) -> None:
    forged = {"__type__": "taskops.attrs", "__value__": {"class": "os.system", "data": {"command": "true"}}}

    result = app.send_task("tests.testapp.tasks.summarize_thread", args=[forged])

    with pytest.raises(CodecError, match=r"args\[0\]: taskops\.attrs: class 'os\.system' is not registered"):
        result.get(timeout=60)
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "FAILURE"
    assert "CodecError" in stored.result
    assert "is not registered" in stored.result
    question = Question.objects.create(title="after", body="still running")
    assert count_words.delay("testapp.question", question.pk).get(timeout=60) == 2
    assert worker.is_alive()


@pytest.mark.django_db
def test_the_broker_carries_the_envelopes_of_the_wire_format() -> None:
    question, answers = thread(2)
    requested = timezone.now()
    report = ThreadReport(question=question, requested_at=requested)
    queue = f"taskops-raw-{uuid.uuid4().hex[:8]}"  # no worker consumes it

    kwargs = {"answers": Answer.objects.order_by("pk"), "first": answers[0]}
    result = app.send_task(summarize_thread.name, args=(report,), kwargs=kwargs, queue=queue)

    # On the queue's lane, which only workers with taskops consume (taskops.wire.lanes).
    with app.connection_for_read() as connection, connection.SimpleQueue(lane_of(queue)) as simple:
        message = simple.get(timeout=10)
        message.ack()
        body: Any = json.loads(message.body or "")
        headers = message.headers
        content_type = message.content_type
        if not settings.CELERY_BROKER_URL.startswith("filesystem"):
            simple.queue.delete()
    assert content_type == "application/json"
    assert headers["id"] == result.id
    assert body[0] == [
        envelope(
            "taskops.attrs",
            {
                "class": "tests.testapp.reports.ThreadReport",
                "data": {
                    "question": envelope("taskops.model", {"model": "testapp.question", "pk": question.pk}),
                    "requested_at": envelope("datetime", requested.isoformat()),
                    "top_n": 3,
                    "note": "",
                },
            },
        )
    ]
    assert body[1] == {
        "answers": envelope("taskops.models", {"model": "testapp.answer", "pks": [a.pk for a in answers]}),
        "first": envelope("taskops.model", {"model": "testapp.answer", "pk": answers[0].pk}),
    }
