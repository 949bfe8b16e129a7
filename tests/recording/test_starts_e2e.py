"""A task's start and end in one write, with a real prefork worker (taskops.recording.starts).

A short task's start goes with its end; a long task's start is written when
``START_LINGER`` is up, while the task still runs; a pool child killed while
it holds a start loses nothing the row needs: the worker's main process
records the end.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from django_celery_results.models import TaskResult

from taskops.models import Dispatch, Source, State
from tests.conftest import WorkerProcess, start_worker_process
from tests.polling import wait_for
from tests.testapp.tasks import add, wait_for_release

HOLD_QUEUE = "taskops-tests-hold"


def test_a_long_tasks_start_is_visible_before_it_ends(worker: WorkerProcess, tmp_path: Path) -> None:
    release = tmp_path / "release"
    result = wait_for_release.delay(str(release))

    started = wait_for(
        lambda: Dispatch.objects.filter(task_id=result.id, state=State.STARTED).first(), what="STARTED on the row"
    )
    assert started.started_at is not None
    assert started.finished_at is None
    assert started.worker.startswith(worker.name.split("@")[0] + "@")
    assert not TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists()

    release.touch()
    row = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.SUCCESS).first(), what="SUCCESS")
    assert row.started_at == started.started_at
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at


def test_a_short_tasks_start_is_written_with_its_end(worker: WorkerProcess) -> None:
    result = add.delay(2, 3)
    assert result.get(timeout=60) == 5
    row = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.SUCCESS).first(), what="SUCCESS")
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.started_at <= row.finished_at
    assert row.worker


def test_a_pool_child_killed_while_it_holds_the_start_loses_nothing(transactional_db: None, tmp_path: Path) -> None:
    """SIGKILL between the start and the write that would carry it: the row still ends, with its arguments."""
    dedicated = start_worker_process(f"--queues={HOLD_QUEUE}", concurrency=1, env={"TASKOPS_TEST_START_LINGER": "600"})
    try:
        result = wait_for_release.apply_async((str(tmp_path / "never"),), queue=HOLD_QUEUE)
        running = wait_for(lambda: TaskResult.objects.filter(task_id=result.id, status="STARTED").first())
        # The body runs, and the start is held (600 s): the row is still the publisher's.
        row = Dispatch.objects.get(task_id=result.id)
        assert row.state == State.PENDING
        assert row.started_at is None

        os.kill(json.loads(running.result)["pid"], signal.SIGKILL)

        lost = wait_for(
            lambda: Dispatch.objects.filter(task_id=result.id, state=State.FAILURE).first(), what="the lost task"
        )
        assert "WorkerLostError" in lost.exception
        assert lost.finished_at is not None
        assert lost.source == Source.PUBLISHER
        assert json.loads(lost.args) == [str(tmp_path / "never")]

        # The worker goes on with a new pool child, and its tasks' starts still land (with their ends).
        after = add.apply_async((1, 1), queue=HOLD_QUEUE)
        assert after.get(timeout=60) == 2
        done = wait_for(lambda: Dispatch.objects.filter(task_id=after.id, state=State.SUCCESS).first())
        assert done.started_at is not None
    finally:
        dedicated.stop()
