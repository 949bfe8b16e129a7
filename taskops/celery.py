"""The Celery base task of taskops.

Set it app-wide with ``Celery(..., task_cls="taskops.celery:Task")``. Before a
task body runs, :meth:`Task.start` resolves the model references in the
arguments (one query per model class), judges lag and drift
(:mod:`taskops.staleness`), records the start (:mod:`taskops.recording`) and
applies the ``on_missing`` and ``on_stale`` policies. Before it publishes,
:meth:`Task.apply_async` refuses instances that cannot be sent and evaluates
the QuerySets among the arguments: one query serves Celery's ``argsrepr``,
the recorder and the encoder.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import TYPE_CHECKING, Any

from celery import states
from celery.contrib.django.task import DjangoTask
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult as CeleryAsyncResult
from celery.utils.log import get_task_logger
from django.db.models import Model
from kombu.utils.uuid import uuid

from taskops.models import Drift, MissingPolicy, StalePolicy, State
from taskops.recording import (
    REPRS,
    duplicate_delivery,
    is_duplicate,
    prepare_arguments,
    record_start,
    reprs_not_given,
    write_held_start,
)
from taskops.recording.health import on_fresh_connection
from taskops.recording.worker import attempt_started_at
from taskops.signals import stale_start, task_skipped
from taskops.staleness import Skip, StaleObjectError, StartVerdict, TaskSkipped, judge_start, with_recorded_refs
from taskops.wire import (
    CodecError,
    MissingObjectError,
    ModelRef,
    TaskopsHeader,
    attrs_registry,
    collect_refs,
    has_placeholders,
    parse_time,
    resolve,
    resolve_refs,
    substitute,
)
from taskops.wire.lanes import install_router

if TYPE_CHECKING:
    from celery import Celery

    BaseTask = DjangoTask[Any, Any]
    BaseResult = CeleryAsyncResult[Any]
else:
    BaseTask = DjangoTask
    BaseResult = CeleryAsyncResult

__all__ = [
    "SKIPPED",
    "AsyncResult",
    "CodecError",
    "MissingObjectError",
    "StaleObjectError",
    "Task",
    "TaskSkipped",
]

logger = get_task_logger(__name__)

#: The state taskops records for a task a policy chose not to run (the result
#: backend and Celery's events say ``REVOKED``, with a :class:`TaskSkipped`).
SKIPPED = State.SKIPPED
#: Seconds between two looks for SKIPPED while ``AsyncResult.get`` waits.
SKIP_CHECK_INTERVAL = 1.0
#: Default of the ``stale_retry_countdown`` option: seconds before ``on_stale="retry"`` runs the task again.
STALE_RETRY_COUNTDOWN = 1.0

Objects = dict[ModelRef, Model | None]


def option_errors(task_cls: type) -> list[str]:
    """What is wrong with a task class's ``on_missing`` / ``on_stale`` / ``stale_retry_countdown`` values."""
    errors = []
    name = task_cls.__dict__.get("name") or f"{task_cls.__module__}.{task_cls.__qualname__}"
    for option, policy in (("on_missing", MissingPolicy), ("on_stale", StalePolicy)):
        value = getattr(task_cls, option, None)
        choices = policy.values
        if value not in choices:
            errors.append(f"task {name}: {option} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    countdown = getattr(task_cls, "stale_retry_countdown", None)
    if not is_seconds(countdown):
        errors.append(f"task {name}: stale_retry_countdown must be a number of seconds, 0 or more, got {countdown!r}")
    return errors


def is_seconds(value: Any) -> bool:
    """A finite, non-negative int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


class Task(BaseTask):
    """Base task for every task of an app that uses taskops.

    Before the body runs, :meth:`start` decides the attempt: resolve the
    model references (one query per model class), judge lag and drift, record
    the start, apply ``on_missing`` / ``on_stale``.
    """

    abstract = True
    #: Celery's strategy and request, behind checks that refuse a malformed message
    #: instead of letting it stop the worker (:mod:`taskops.intake`).
    Strategy = "taskops.intake:strategy"
    Request = "taskops.intake:Request"
    #: A referenced row is gone when the task starts: a :class:`~taskops.models.MissingPolicy` value.
    on_missing: str = MissingPolicy.FAIL
    #: A referenced row changed since dispatch: a :class:`~taskops.models.StalePolicy` value.
    on_stale: str = StalePolicy.RUN
    #: Seconds before ``on_stale="retry"`` runs the task again (with the rows as they are then).
    stale_retry_countdown: float = STALE_RETRY_COUNTDOWN

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Celery builds a subclass per task, with the decorator's options as
        # class attributes: a typo in them fails here, at definition.
        super().__init_subclass__(**kwargs)
        errors = option_errors(cls)
        if errors:
            raise ValueError("; ".join(errors))

    @classmethod
    def on_bound(cls, app: Celery) -> None:
        """Route the app's tasks to lanes; register the attrs classes named by the task's annotations.

        Lanes (:mod:`taskops.wire.lanes`) keep taskops' messages away from
        workers without taskops, which would drop them.
        """
        super().on_bound(app)
        install_router(app)
        run = cls.__dict__.get("run")
        if run is not None:
            attrs_registry.note_annotations(getattr(run, "__func__", run))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self.start(args, kwargs)
        return super().__call__(*args, **kwargs)

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        """Celery's, after :func:`~taskops.recording.prepare_arguments`.

        An instance that cannot be sent (an unsaved one) raises
        :class:`~taskops.wire.CodecError` here, before anything is published;
        a QuerySet is evaluated, one query that shows, snapshots and sends the
        same rows; a retry of a redacted task keeps its publisher's
        ``argsrepr``/``kwargsrepr``. Eager calls pass objects as they are, so
        they are left alone.
        """
        if not self.app.conf.task_always_eager:
            # A retry: the attempt's start, if still held to go with its end, is written first.
            write_held_start(options.get("task_id"))
            given = any(name in options for name in REPRS)
            made = prepare_arguments(args, kwargs, options.get("task_id"))
            # The caller's own reprs win over taskops' (a publisher's word).
            options = {**made, **options}
            if not given and "argsrepr" not in made and not rest:
                # Neither the caller's reprs nor a redacted retry's: the record knows it without comparing.
                task_id = options["task_id"] = options.get("task_id") or uuid()
                with reprs_not_given(task_id):
                    return super().apply_async(args, kwargs, **options)
        return super().apply_async(args, kwargs, *rest, **options)

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Resolve, judge, record the start, apply the policies; the arguments the body gets.

        The one place a task's start is decided. Whatever stops the task here
        (a refused argument, a missing row, a stale row) is recorded first.
        """
        request = self.request
        if is_duplicate(request.id):  # a re-dispatched call delivered again (taskops.recording.deliveries)
            raise duplicate_delivery(self)
        header = TaskopsHeader.from_request(request)
        if header is not None and request.id:
            header = with_recorded_refs(header, request.id)
        started_at = attempt_started_at(request.id)
        eta = _eta(request)
        try:
            # A connection a database cut broke is dropped first, and a lookup that meets one is tried once more.
            objects = on_fresh_connection(lambda: self.fetch_refs(args, kwargs))
        except CodecError:
            record_start(self, header, judge_start(header, {}, started_at, eta))
            raise
        verdict = judge_start(header, objects, started_at, eta)
        self.warn_if_race(verdict)
        missing = sorted(str(ref) for ref, obj in objects.items() if obj is None)
        if missing or verdict.likely_race:
            stale_start.send(
                sender=type(self),
                task_name=self.name,
                task_id=request.id,
                missing=bool(missing),
                likely_race=verdict.likely_race,
            )
        if missing:
            record_start(self, header, verdict, self.on_missing)
            self.apply_on_missing(missing)
        try:
            new_args, new_kwargs = self.put_in_place(args, kwargs, objects)
        except CodecError:
            record_start(self, header, verdict)
            raise
        action = self.on_stale if verdict.drift == Drift.CHANGED else ""
        record_start(self, header, verdict, action)
        self.apply_on_stale(verdict, action, new_args, new_kwargs)
        return new_args, new_kwargs

    def fetch_refs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Objects:
        """Every row the arguments reference, one query per model class (None for a row that is gone).

        Raises :class:`~taskops.wire.CodecError`, naming where, for anything the decoder refused.
        """
        refs: set[ModelRef] = set()
        collect_refs(args, refs, root="args")
        collect_refs(kwargs, refs, root="kwargs")
        return resolve_refs(refs) if refs else {}

    def put_in_place(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], objects: Objects
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with fetched instances in place of refs and attrs objects built."""
        return tuple(substitute(args, objects, root="args")), substitute(kwargs, objects, root="kwargs")

    def resolve_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], Objects]:
        """:meth:`fetch_refs` then :meth:`put_in_place`, without judging, recording or policies."""
        objects = self.fetch_refs(args, kwargs)
        return (*self.put_in_place(args, kwargs, objects), objects)

    def warn_if_race(self, verdict: StartVerdict) -> None:
        """Say at once that rows are missing because the publisher had not committed (likely race)."""
        if verdict.likely_race:
            logger.warning(
                "taskops: %s[%s] started before its referenced rows were committed (likely race): %s",
                self.name,
                self.request.id,
                ", ".join(map(str, verdict.missing)),
            )

    def apply_on_missing(self, missing: list[str]) -> None:
        """Referenced rows are gone (``missing`` names them): fail (default) or skip, as ``on_missing`` says."""
        reason = f"{self.name}: referenced object(s) no longer exist: {', '.join(missing)}"
        if self.on_missing == MissingPolicy.SKIP:
            self.skip(reason)
        raise MissingObjectError(reason)

    def apply_on_stale(self, verdict: StartVerdict, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A referenced row changed: run, skip, retry with the fresh rows, or fail, as ``on_stale`` says."""
        if action in ("", StalePolicy.RUN):
            return
        reason = f"{self.name}: referenced object(s) changed since dispatch: " + ", ".join(
            f"{ref} ({', '.join(ref.changed_fields)})" for ref in verdict.changed
        )
        if action == StalePolicy.SKIP:
            self.skip(reason)
        if action == StalePolicy.RETRY:
            # Fresh instances go out again, so the next attempt is judged against them.
            raise self.retry(args=args, kwargs=kwargs, countdown=self.stale_retry_countdown)
        raise StaleObjectError(reason)

    def skip(self, reason: str) -> None:
        """Stop here without running the body.

        taskops records ``SKIPPED``; the result backend gets ``REVOKED`` with a
        :class:`TaskSkipped` that carries the reason, and the worker's main
        process sends ``task-revoked`` (:mod:`taskops.staleness.skip`). A
        chord member that is skipped counts as ended: the chord's body then
        fails with Celery's ``ChordError`` naming it, as for a revoked member.
        """
        task_id = self.request.id
        logger.warning("Task %s[%s] skipped: %s", self.name, task_id, reason)
        if task_id and not self.request.is_eager:
            skipped = TaskSkipped(reason)
            self.backend.store_result(task_id, skipped, states.REVOKED, request=self.request)
            if self.request.chord:
                # As Celery's own mark_as_revoked does: a chord counts its members as they end, and
                # the Ignore that stops this task tells it nothing, so the chord would wait forever.
                self.backend.on_chord_part_return(self.request, states.REVOKED, skipped)
        task_skipped.send(sender=type(self), task=self, task_id=task_id, reason=reason)
        raise Skip(reason)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult:
        """The result handle ``delay``/``apply_async`` return: it resolves refs in results."""
        return AsyncResult(task_id, backend=self.backend, task_name=self.name, app=self.app, **kwargs)


class AsyncResult(BaseResult):
    """A result handle that gives model instances and attrs objects, never placeholders.

    A task's return value travels through the codec like its arguments: a
    model instance comes back as a reference, fetched here (in the client) with
    one query per model class. A row deleted meanwhile raises
    :class:`~taskops.wire.MissingObjectError`. :meth:`get` of a skipped task
    raises :class:`TaskSkipped` (stored as state ``REVOKED``, which Celery's
    own wait ends on; a result stored as ``SKIPPED`` by an earlier taskops is
    looked for between waits, or the wait would never end).
    """

    def _maybe_set_cache(self, meta: dict[str, Any] | None) -> Any:
        if meta and meta.get("status") not in states.EXCEPTION_STATES and has_placeholders(meta.get("result")):
            meta = {**meta, "result": resolve(meta["result"], root="result")}
        return super()._maybe_set_cache(meta)  # type: ignore[misc]

    def ready(self) -> bool:
        return self.state == SKIPPED or super().ready()

    def get(  # type: ignore[override]
        self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5, **kwargs: Any
    ) -> Any:
        # Wait in slices and look for SKIPPED between them: Celery's own wait
        # only ends on its ready states, and would wait for a skipped task forever.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if getattr(self, "_cache", None) is None:
                self._raise_if_skipped()
            left = None if deadline is None else deadline - time.monotonic()
            wait = SKIP_CHECK_INTERVAL if left is None else max(0.0, min(SKIP_CHECK_INTERVAL, left))
            try:
                return super().get(wait, propagate, interval, **kwargs)
            except CeleryTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _raise_if_skipped(self) -> None:
        meta = self.backend.get_task_meta(self.id)
        if meta.get("status") == SKIPPED:
            reason = meta.get("result")
            raise TaskSkipped(reason.get("reason") if isinstance(reason, dict) else reason)


def _eta(request: Any) -> dt.datetime | None:
    """The request's ETA as an aware datetime; None when it has none or it cannot be read."""
    try:
        return parse_time(getattr(request, "eta", None))
    except (TypeError, ValueError):
        return None
