"""The worker's side: the start, the end, and what happens to a task in between.

The start (lag, drift, policy) is recorded when the Task base calls
:func:`record_start`, and written with the end by ``task_postrun`` when the
task ends within ``TASKOPS["START_LINGER"]``, else when that time is up
(:mod:`taskops.recording.starts`); the worker's main process
writes the receipt of a task that waits for its ETA, revocations,
rejections, unknown tasks and lost pool children. Nothing is written in the
main process for a task that runs at once (the receive time travels to the
pool child in the request), so the consumer loop never waits on the
database.

Every write goes through the store of the database
(:mod:`taskops.recording.store`) as an upsert: the publisher's row may not
have landed yet (it is written in the background), so a write that comes
first creates the row from the message (:mod:`taskops.recording.worker_rows`),
and none ever moves the state back (:class:`~taskops.recording.columns.Progress`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import attrs
from django.db import connections, router
from django.db.models import QuerySet
from django.utils import timezone

from taskops.models import Dispatch, State
from taskops.recording import starts
from taskops.recording.background import defer, deferring
from taskops.recording.columns import DISPATCH, REF, Progress
from taskops.recording.guard import enabled, guarded, logger
from taskops.recording.health import drop_broken_connections, is_outage
from taskops.recording.records import Row, clipped
from taskops.recording.store import store_for
from taskops.recording.worker_rows import (
    MessageFacts,
    WorkerWrite,
    header_ref_rows,
    start_ref_rows,
    worker_row,
)
from taskops.staleness import StartVerdict, judge_start
from taskops.wire import TaskopsHeader, parse_time

#: Request attribute carrying the worker's receive time to the pool child.
RECEIVED_KEY = "taskops_received"
#: Characters of an exception summary kept on the row.
SUMMARY_CHARS = 2000


@attrs.define
class Attempt:
    """What this process knows about a task it is running, until ``task_postrun``."""

    started_at: dt.datetime
    started: float
    start_recorded: bool = False
    exception: str = ""
    skipped: str = ""


_attempts: dict[str, Attempt] = {}


def attempt_started_at(task_id: str | None) -> dt.datetime:
    """When the running attempt of ``task_id`` started (``task_prerun``), else now."""
    attempt = _attempts.get(task_id or "")
    return attempt.started_at if attempt is not None else timezone.now()


def forget_attempt(task_id: str) -> None:
    """This delivery is not an attempt (a duplicate, not run): its end writes nothing."""
    _attempts.pop(task_id, None)
    starts.take(task_id)


def is_recorded_run(task: Any) -> bool:
    """The task runs in a worker from a message (not eagerly, not called directly) and recording is on."""
    request = getattr(task, "request", None)
    return enabled() and request is not None and not request.is_eager and bool(request.id)


def summarize(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:SUMMARY_CHARS]


def _dispatches() -> QuerySet[Dispatch]:
    return Dispatch.objects.using(router.db_for_write(Dispatch))


def _update(queryset: QuerySet[Dispatch], fields: Row) -> int:
    return store_for(queryset.db).update(queryset, fields)


def advance(write: WorkerWrite) -> None:
    """Write through the store of the dispatches' database; kept and retried when it is down.

    A write that meets an outage (and every write after it, in order, while
    some are kept) goes to :func:`~taskops.recording.background.defer`.
    """
    using = router.db_for_write(Dispatch)
    connection = connections[using]

    def write_now() -> None:
        store_for(using).advance(write, using)

    if connection.in_atomic_block:
        write_now()
        return
    if deferring():
        defer(write_now)
        return
    drop_broken_connections()
    try:
        write_now()
    except Exception as exc:
        if not is_outage(exc, using):
            raise
        if not deferring():  # the first of an outage: one line, the writer says the rest
            logger.warning("taskops: the database is unavailable (%s); worker updates are kept and retried", exc)
        defer(write_now)


def record_start(task: Any, header: TaskopsHeader | None, verdict: StartVerdict, action: str = "") -> None:
    """Write the start of an attempt: times, worker, lag, drift per ref, the policy's decision.

    Does nothing for a task that is not a recorded run; never raises unless STRICT.
    """
    if not is_recorded_run(task):
        return
    request = task.request
    with guarded(f"recording the start of {request.id}", in_signal=False):
        attempt = _attempts.get(request.id)
        if attempt is not None:
            attempt.start_recorded = True
        notes = (*(header.problems if header is not None else ()), *verdict.notes)
        fields = start_fields(verdict, action, request.hostname or "", getattr(request, RECEIVED_KEY, None), notes)
        facts = MessageFacts.of_task(task)
        write = WorkerWrite(
            request.id,
            fields,
            Progress(State.STARTED, facts.retries),
            lambda: worker_row(facts, verdict.started_at, len(verdict.refs)),
            lambda: start_ref_rows(verdict, header),
            ref_fields=REF.start,
        )
        if attempt is None:
            advance(write)
        else:  # its end may come soon: written with it, or after START_LINGER (taskops.recording.starts)
            starts.hold(write, advance)


def start_fields(verdict: StartVerdict, action: str, worker: str, received: float | None, notes: Sequence[str]) -> Row:
    """The columns of an attempt's start: times, worker, lag, drift, the policy's decision.

    ``received``: when the worker received the task (a timestamp), if it said.
    """
    fields: Row = {
        "state": State.STARTED,
        "started_at": verdict.started_at,
        "worker": worker,
        "lag": verdict.lag,
        "drift": verdict.drift,
        "likely_race": verdict.likely_race,
        "stale_action": action,
    }
    if received:
        fields["received_at"] = dt.datetime.fromtimestamp(received, dt.UTC)
    if notes:
        fields["notes"] = "; ".join(notes)
    return DISPATCH.written_by("start", fields)


def received_fields(received_at: dt.datetime, worker: str) -> Row:
    """The columns of the receipt of a task that waits for its ETA."""
    return DISPATCH.written_by("received", {"state": State.RECEIVED, "received_at": received_at, "worker": worker})


def finish_fields(state: str, finished_at: dt.datetime, exception: str, runtime: dt.timedelta | None = None) -> Row:
    """The columns of an attempt's end."""
    fields: Row = {"state": state, "finished_at": finished_at, "exception": exception}
    if runtime is not None:
        fields["runtime"] = runtime
    return DISPATCH.written_by("finish", fields)


def finish(
    facts: MessageFacts,
    state: str,
    exception: str = "",
    runtime: dt.timedelta | None = None,
    attempt_known: bool = True,
    start: WorkerWrite | None = None,
) -> None:
    """Write the end of an attempt (or of a task that never ran): one upsert.

    ``attempt_known`` False: the writer cannot tell which attempt ended (the
    main process after a time limit), so only the state guards the row.
    ``start``: the attempt's start, still held (:mod:`taskops.recording.starts`),
    written in the same upsert.
    """
    now = timezone.now()
    fields = finish_fields(state, now, exception, runtime)
    progress = Progress(state, facts.retries if attempt_known else None)
    if start is not None:
        advance(attrs.evolve(start, fields={**start.fields, **fields}, progress=progress))
    else:
        advance_from_message(facts, fields, progress, now)


def advance_from_message(facts: MessageFacts, fields: Row, progress: Progress, when: dt.datetime) -> None:
    """A write that, when it comes first, creates the row from the message (its refs not judged yet)."""
    advance(
        WorkerWrite(
            facts.task_id, fields, progress, lambda: worker_row(facts, when), lambda: header_ref_rows(facts.header)
        )
    )


def on_task_received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    if request is None or not enabled():
        return
    now = time.time()
    # The pool child writes it with the start: no database write in the consumer loop.
    request.request_dict[RECEIVED_KEY] = now
    if request.eta:  # it will wait for its ETA: make the wait visible now
        with guarded(f"recording the receipt of {request.id}"):
            facts = MessageFacts.of_request(request)
            received_at = dt.datetime.fromtimestamp(now, dt.UTC)
            fields = received_fields(received_at, request.hostname or "")
            advance_from_message(facts, fields, Progress(State.RECEIVED, facts.retries), received_at)


def on_task_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id and is_recorded_run(task):
        _attempts[task_id] = Attempt(started_at=timezone.now(), started=time.monotonic())
        # Before Celery stores STARTED through the result backend: a connection a
        # database cut broke would fail this task, and every one after it.
        with guarded(f"checking the connections before {task_id}"):
            drop_broken_connections()


def on_task_skipped(
    sender: Any = None, task: Any = None, task_id: str | None = None, reason: str = "", **kw: Any
) -> None:
    attempt = _attempts.get(task_id or "")
    if attempt is not None:
        attempt.skipped = reason or "skipped"


def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    **rest: Any,
) -> None:
    if not task_id or not enabled():
        return
    summary = summarize(exception) if exception is not None else "failed"
    attempt = _attempts.get(task_id)
    if attempt is not None:  # in the pool child: task_postrun writes it
        attempt.exception = summary
        return
    # The worker's main process: a lost pool child (WorkerLostError), a time limit.
    with guarded(f"recording the failure of {task_id}"):
        # For a lost child, Celery puts the task's request on its stack for these
        # receivers; after a time limit it does not, and the arguments are left
        # out (the publisher's write brings them, redacted or not).
        request = getattr(sender, "request", None)
        if getattr(request, "id", None) == task_id:
            finish(MessageFacts.of_task(sender), State.FAILURE, summary)
        else:
            facts = MessageFacts(task_id, str(getattr(sender, "name", "") or ""), headers={})
            finish(facts, State.FAILURE, summary, attempt_known=False)


def on_lost_after_success(task: Any, request: Any) -> None:
    """The worker's main process: a pool child stored SUCCESS, then was lost before its end was recorded."""
    task_id = getattr(request, "id", None)
    if not task_id or not enabled():
        return
    with guarded(f"recording the success of {task_id}", in_signal=False):
        facts = MessageFacts.of_context(request, str(getattr(task, "name", "") or ""))
        finish(facts, State.SUCCESS, "the pool child was lost after the task succeeded")


def on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    attempt = _attempts.get(getattr(request, "id", None) or "")
    if attempt is not None:
        attempt.exception = f"Retry: {reason}"[:SUMMARY_CHARS]


def on_task_postrun(
    sender: Any = None, task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    attempt = _attempts.pop(task_id or "", None)
    if attempt is None or not task_id:
        return
    with guarded(f"recording the end of {task_id}"):
        if not attempt.start_recorded:
            # A task whose class is not taskops' Task: its start was never judged.
            header = TaskopsHeader.from_request(task.request)
            verdict = judge_start(header, {}, attempt.started_at, parse_time(task.request.eta))
            record_start(task, header, verdict)
        runtime = dt.timedelta(seconds=time.monotonic() - attempt.started)
        start = starts.take(task_id)
        if attempt.skipped:
            finish(MessageFacts.of_task(task), State.SKIPPED, attempt.skipped, runtime, start=start)
        elif state == State.RETRY:
            if start is not None:  # the retry's publish wrote it first, unless published by other means
                advance(start)
            # The retry's publish already wrote the new attempt: only this one's end is added.
            _update(
                _dispatches().filter(task_id=clipped(task_id), state=State.RETRY),
                DISPATCH.written_by("finish", {"exception": attempt.exception, "runtime": runtime}),
            )
        elif state is None:
            # Celery failed outside the body before it ended (storing STARTED while
            # the database was cut): the body never ran, or never returned.
            summary = attempt.exception or "the task did not run: Celery failed outside its body (see the worker log)"
            finish(MessageFacts.of_task(task), State.FAILURE, summary, runtime, start=start)
        else:
            finish(MessageFacts.of_task(task), state, attempt.exception, runtime, start=start)


def on_task_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **kwargs: Any,
) -> None:
    task_id = getattr(request, "id", None)
    if not task_id or not enabled():
        return
    reason = "expired" if expired else (f"terminated (signal {signum})" if terminated else "revoked")
    with guarded(f"recording the revocation of {task_id}"):
        # Celery sends the revoked task's request (a Context), the task as sender.
        task_name = getattr(sender, "name", None) or getattr(request, "task", None) or ""
        finish(MessageFacts.of_context(request, task_name), State.REVOKED, reason)


def on_task_rejected(sender: Any = None, message: Any = None, exc: Any = None, **kwargs: Any) -> None:
    task_id = (getattr(message, "headers", None) or {}).get("id")
    if task_id and enabled():
        with guarded(f"recording the rejection of {task_id}"):
            finish(
                MessageFacts.of_message(task_id, message), State.REJECTED, f"rejected: {exc!r}" if exc else "rejected"
            )


def on_task_unknown(
    sender: Any = None, name: str | None = None, id: str | None = None, message: Any = None, **kwargs: Any
) -> None:
    if id and enabled():
        with guarded(f"recording the unknown task {id}"):
            finish(MessageFacts.of_message(id, message), State.REJECTED, f"unknown task {name!r}")
