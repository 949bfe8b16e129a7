"""End to end with the real worker, the publisher's writes held back: the worker writes first.

Every worker write is an upsert: it lands whether or not the publisher's row
is there, and the publisher's late write merges into it without moving the
state back.
"""

from __future__ import annotations

from collections.abc import Callable

from taskops import recording
from taskops.admin.dashboard.queries import collect, get_window
from taskops.models import Dispatch, Drift, Source, State
from taskops.staleness import snapshot
from tests.celery_app import app
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.testapp.models import Question
from tests.testapp.tasks import add, read_body


def rows_in(state: State, task_ids: list[str]) -> Callable[[], list[Dispatch] | None]:
    def probe() -> list[Dispatch] | None:
        rows = {row.task_id: row for row in Dispatch.objects.filter(task_id__in=task_ids, state=state)}
        return [rows[task_id] for task_id in task_ids] if len(rows) == len(task_ids) else None

    return probe


def waiting_figures(task_name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(pending, scheduled) as the dashboard counts them: in the totals, and in ``task_name``'s row."""
    dashboard = collect(get_window(None))
    (row,) = (row for row in dashboard.tasks if row.task_name == task_name)
    return (dashboard.totals.pending, dashboard.totals.scheduled), (row.figures.pending, row.figures.scheduled)


def test_eta_tasks_are_received_then_merge_with_the_publishers_row(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Waits for its ETA", body="b")
    with recording.writer_paused():
        results = [read_body.apply_async((question,), countdown=600) for _ in range(6)]
        ids = [result.id for result in results]
        received = wait_for(rows_in(State.RECEIVED, ids), what="six receipts")
        assert not recording.flush(timeout=0.1)  # the publisher's records are still held
        # Made by the worker from the message: the arguments and refs with their digests, no str().
        envelope = (
            f'[{{"__type__": "taskops.model", "__value__": {{"model": "testapp.question", "pk": {question.pk}}}}}]'
        )
        for row in received:
            ref = row.refs.get()
            assert (row.source, row.args, row.task_name, row.ref_count) == (Source.WORKER, envelope, read_body.name, 1)
            assert row.received_at is not None
            assert row.worker.startswith(worker.name.split("@")[0])
            assert (ref.object_pk, ref.digests, ref.object_repr, ref.drift) == (
                str(question.pk),
                snapshot.take(question),
                "",
                Drift.PENDING,
            )
        # Rows the worker made wait for their ETA: scheduled, not backlog.
        assert waiting_figures(read_body.name) == ((0, 6), (0, 6))
    assert recording.flush()

    merged = rows_in(State.RECEIVED, ids)()
    assert merged is not None  # the state kept: RECEIVED, not back to PENDING
    for before, after in zip(received, merged, strict=True):
        assert after.source == Source.PUBLISHER
        assert (after.received_at, after.worker) == (before.received_at, before.worker)
        assert after.refs.get().object_repr == "Waits for its ETA"
    assert waiting_figures(read_body.name) == ((0, 6), (0, 6))
    app.control.revoke(ids)  # they would run in ten minutes


def test_an_unknown_task_ends_rejected(worker: WorkerProcess) -> None:
    with recording.writer_paused():
        result = app.send_task("no.such.task", args=[1, 2])
        (rejected,) = wait_for(rows_in(State.REJECTED, [result.id]), what="the rejection")
        assert (rejected.source, rejected.task_name, rejected.args) == (Source.WORKER, "no.such.task", "[1, 2]")
    assert recording.flush()

    row = Dispatch.objects.get(task_id=result.id)
    assert (row.state, row.source, row.exception) == (State.REJECTED, Source.PUBLISHER, "unknown task 'no.such.task'")
    assert row.finished_at == rejected.finished_at


def test_a_revoked_eta_task_ends_revoked(worker: WorkerProcess) -> None:
    with recording.writer_paused():
        result = add.apply_async((1, 2), countdown=2)
        wait_for(rows_in(State.RECEIVED, [result.id]), what="the receipt")
        result.revoke()
        (revoked,) = wait_for(rows_in(State.REVOKED, [result.id]), what="the revocation at its ETA")
        assert (revoked.source, revoked.exception) == (Source.WORKER, "revoked")
    assert recording.flush()

    row = Dispatch.objects.get(task_id=result.id)
    assert (row.state, row.source, row.started_at) == (State.REVOKED, Source.PUBLISHER, None)
    assert row.received_at is not None
    assert row.finished_at is not None


def test_many_unknown_tasks_all_end_rejected_whichever_write_lands_first(worker: WorkerProcess) -> None:
    """Not held back: the publisher's writer and the worker race, and either order ends REJECTED."""
    ids = [app.send_task("no.such.task", args=[index]).id for index in range(40)]

    rows = wait_for(rows_in(State.REJECTED, ids), what="forty rejections")
    assert recording.flush()

    assert Dispatch.objects.filter(task_id__in=ids).count() == 40
    assert {row.exception for row in rows} == {"unknown task 'no.such.task'"}
    assert set(Dispatch.objects.filter(task_id__in=ids).values_list("state", "source")) == {
        (State.REJECTED, Source.PUBLISHER)
    }
