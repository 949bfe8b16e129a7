"""End to end: a task dispatched with .delay runs in a real worker."""

from __future__ import annotations

from django_celery_results.models import TaskResult

from tests.conftest import WorkerProcess
from tests.testapp.models import Question
from tests.testapp.tasks import count_words


def test_delay_runs_in_worker_and_result_is_stored(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Stale data?", body="one two three four")

    result = count_words.delay("testapp.question", question.pk)

    assert result.get(timeout=60) == 4
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "tests.testapp.tasks.count_words"
    assert stored.result == "4"
    assert worker.name.split("@")[0] in (stored.worker or "")  # type: ignore[attr-defined]
