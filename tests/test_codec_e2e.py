"""End to end: model instances and attrs objects cross a real broker to a real worker."""

from __future__ import annotations

from django.utils import timezone

from demo.models import Answer, Question
from demo.reports import ThreadReport
from demo.tasks import rebuild_summary, summarize_thread
from tests.conftest import WorkerProcess


def test_instance_and_list_arrive_fresh(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Fresh?", body="old body")
    answers = [Answer.objects.create(question=question, body=f"answer {i}", score=i) for i in range(3)]
    result = rebuild_summary.delay(question, answers[::-1])

    summary = result.get(timeout=60)

    assert summary.splitlines()[0] == "3 answer(s)."
    assert [line.split(") ")[1] for line in summary.splitlines()[1:]] == ["answer 2", "answer 1", "answer 0"]
    question.refresh_from_db()
    assert question.summary == summary


def test_attrs_object_with_datetime_and_ref(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Report", body="b")
    best = Answer.objects.create(question=question, body="one two three", score=9)
    Answer.objects.create(question=question, body="four", score=1)
    requested = timezone.now()

    result = summarize_thread.delay(ThreadReport(question=question, requested_at=requested, top_n=1, note="hi"))

    assert result.get(timeout=60) == {
        "question": question.pk,
        "requested_at": requested.isoformat(),
        "top_answers": [best.pk],
        "words": 3,
        "note": "hi",
    }
