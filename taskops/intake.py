"""What a worker takes in: no task message may stop or stall it.

Celery's consumer reads a task message in the worker's main process. A body
that is not ``[args, kwargs, embed]`` (``{"a": 1}``, a number, a placeholder
for a refused payload) or a malformed header makes its ``Request`` raise
something other than ``InvalidTaskError``; that escapes the consumer loop,
the worker stops ("Unrecoverable error"), and the message, restored, stops
every restart. Three guards, cheapest first:

- :func:`strategy` (the taskops Task's ``Strategy``) checks the shape of a
  message before Celery's strategy reads it, and refuses a bad one with
  ``InvalidTaskError``: Celery then logs it, rejects the message (acked, or
  dead-lettered where the queue has one) and sends ``task_rejected``, which
  the recorder writes as state ``REJECTED`` with the reason.
- :class:`Request` turns any other error while Celery builds the request into
  ``InvalidTaskError`` (nothing has run yet).
- :class:`Consumer` (set as ``worker_consumer`` when the worker starts, unless
  the project chose its own) catches what still escapes, for messages that
  never reach a task's strategy (a task name that is not a string): it
  rejects the message, reports it, and keeps consuming; a body that cannot
  be decoded at all (not JSON), which Celery logs and acks, it reports too,
  so that it is recorded as ``REJECTED`` with the decoder's error.

Every refused message that names a task id also ends where Celery's other
consumers look, as Celery itself ends an unknown task: the result backend
stores ``FAILURE`` with the ``InvalidTaskError``, and the worker sends
``task-failed`` (Flower shows the task failed instead of pending forever).
And a skipped task (:mod:`taskops.staleness.skip`) ends with ``task-revoked``,
sent by :class:`Request` in the worker's main process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]
from billiard.exceptions import WorkerLostError
from celery import signals as celery_signals
from celery.exceptions import InvalidTaskError
from celery.utils.collections import AttributeDict
from celery.utils.saferepr import saferepr
from celery.worker.consumer.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request as CeleryRequest
from celery.worker.strategy import default as default_strategy

from taskops.recording.health import drop_broken_connections
from taskops.recording.worker import on_lost_after_success, on_task_failure
from taskops.staleness import Skip, TaskSkipped
from taskops.wire.errors import short
from taskops.wire.lanes import add_lanes

logger = logging.getLogger("taskops.intake")

#: Celery's own consumer class, which :func:`protect_consumer` replaces.
CELERY_CONSUMER = "celery.worker.consumer:Consumer"
TASKOPS_CONSUMER = "taskops.intake:Consumer"

#: Headers Celery reads as text (or None), and those it reads as numbers.
_TEXT_HEADERS = ("parent_id", "root_id", "group", "shadow", "argsrepr", "kwargsrepr", "origin", "lang")
_EMBED_LISTS = ("callbacks", "errbacks", "chain")


def message_problem(headers: Any, payload: Any) -> str:
    """What makes a protocol 2 task message unreadable for Celery, or ``""``."""
    if not isinstance(headers, dict):
        return f"headers are a {type(headers).__name__}, not a mapping"
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not task_id:
        return f"header 'id' must be a non-empty string, got {short(task_id)}"
    for name in _TEXT_HEADERS:
        if headers.get(name) is not None and not isinstance(headers[name], str):
            return f"header {name!r} must be a string, got {short(headers[name])}"
    retries = headers.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        return f"header 'retries' must be a whole number, got {short(retries)}"
    timelimit = headers.get("timelimit")
    if timelimit is not None and not _is_timelimit(timelimit):
        return f"header 'timelimit' must be [soft, hard] seconds, got {short(timelimit)}"
    return body_problem(payload)


def body_problem(payload: Any) -> str:
    """What makes a decoded body something other than ``[args, kwargs, embed]``, or ``""``."""
    if not isinstance(payload, list | tuple) or len(payload) != 3:
        return f"body must be [args, kwargs, embed], got {short(payload)}"
    args, kwargs, embed = payload
    if not isinstance(args, list | tuple):
        return f"args must be a list, got {short(args)}"
    if not isinstance(kwargs, dict):
        return f"kwargs must be an object, got {short(kwargs)}"
    if embed is None:
        return ""
    if not isinstance(embed, dict):
        return f"embed must be an object, got {short(embed)}"
    for name in _EMBED_LISTS:
        if embed.get(name) is not None and not isinstance(embed[name], list):
            return f"embed {name!r} must be a list, got {short(embed[name])}"
    if embed.get("chord") is not None and not isinstance(embed["chord"], dict):
        return f"embed 'chord' must be an object, got {short(embed['chord'])}"
    return ""


def _is_timelimit(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(item is None or (isinstance(item, int | float) and not isinstance(item, bool)) for item in value)
    )


def strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Callable[..., Any]:
    """Celery's default strategy, behind a check of each message's shape."""
    handle = default_strategy(task, app, consumer, **kwargs)

    def checked(message: Any, body: Any, *args: Any, **kw: Any) -> Any:
        if body is None:  # protocol 2 (protocol 1 bodies were decoded and checked by the consumer)
            problem = message_problem(message.headers, message.payload)
            if problem:
                raise InvalidTaskError(f"taskops refused a malformed task message: {problem}")
        return handle(message, body, *args, **kw)

    return checked


class Request(CeleryRequest):
    """Celery's request; an error while it reads the message refuses the message instead of stopping the worker.

    A skipped task ends with ``task-revoked`` (Celery sends no event for the
    ``Ignore`` that stops it), carrying :class:`~taskops.staleness.TaskSkipped` and its reason.
    """

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(message, *args, **kwargs)
        except InvalidTaskError:
            raise
        except Exception as exc:  # nothing has run yet: refuse the message, never stop
            raise InvalidTaskError(f"taskops refused a malformed task message: {exc!r}") from exc

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        """Celery's, and two endings Celery's readers and taskops' record would otherwise miss.

        A skipped task sends ``task-revoked`` (with ``TaskSkipped``), as a task
        Celery revokes does. And when storing the failure raised (the database
        cut), the record still ends ``FAILURE``: Celery stores a lost pool
        child's failure through the result backend before it sends
        ``task_failure``, so with the database away the signal never comes and
        the row would stay ``PENDING`` (the recorder keeps the write until the
        database answers). A child lost after it stored SUCCESS (before its end
        was recorded) gets no signal at all: its row is ended ``SUCCESS`` here.
        """
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, Skip):
            self.send_event(
                "task-revoked",
                terminated=False,
                signum=None,
                expired=False,
                exception=saferepr(TaskSkipped(exc.reason)),
            )
        try:
            result = super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        except Exception:
            self.task.request_stack.push(self._context)  # type: ignore[attr-defined]  # Celery's, not in the stubs
            try:
                on_task_failure(sender=self.task, task_id=self.id, exception=exc_info.exception)
            finally:
                self.task.request_stack.pop()
            raise
        # Asked after Celery (its own check saw SUCCESS, so this one does too); when Celery
        # recorded a failure instead, the write below changes nothing: a finished state is final.
        if isinstance(exc_info.exception, WorkerLostError) and self._success_stored():
            on_lost_after_success(self.task, self._context)  # type: ignore[attr-defined]  # not in the stubs
        return result

    def _success_stored(self) -> bool:
        """Whether the lost pool child stored SUCCESS first (Celery's own check, where it has one)."""
        stored = getattr(super(), "_success_was_stored", None)
        try:
            drop_broken_connections()
            return bool(stored()) if callable(stored) else False
        except Exception:  # noqa: BLE001  # the backend is away: Celery will record the failure
            return False


class Consumer(CeleryConsumer):
    """Celery's consumer; a message whose handling raises is rejected and reported, and consuming goes on."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except Exception as exc:  # noqa: BLE001  # one message must never stop the worker
                self.refuse(message, exc)
                return None

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """Celery logs and acks a body it cannot decode; taskops also reports it, so the task has a row."""
        super().on_decode_error(message, exc)
        celery_signals.task_rejected.send(sender=self, message=message, exc=exc)
        self.end_refused(message, exc)

    def refuse(self, message: Any, exc: BaseException) -> None:
        """Log, reject (unless already settled) and report a message nothing could handle."""
        logger.error("taskops: refused a task message that Celery could not handle: %r", exc, exc_info=exc)
        if not message.acknowledged:
            message.reject_log_error(logger, self.connection_errors)  # type: ignore[attr-defined]
        celery_signals.task_rejected.send(sender=self, message=message, exc=exc)
        self.end_refused(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        super().on_invalid_task(body, message, exc)
        self.end_refused(message, exc)

    def end_refused(self, message: Any, exc: BaseException) -> None:
        """End a refused message's task where result readers and event consumers look, as Celery ends an unknown task.

        Nothing is written for a message without a task id to name.
        """
        headers = getattr(message, "headers", None)
        if not isinstance(headers, dict):
            return
        task_id = headers.get("id")
        if not isinstance(task_id, str) or not task_id:
            return
        error = exc if isinstance(exc, InvalidTaskError) else InvalidTaskError(f"taskops refused the message: {exc!r}")
        properties = getattr(message, "properties", None) or {}
        request = AttributeDict(
            id=task_id,
            task=headers.get("task") if isinstance(headers.get("task"), str) else None,
            chord=None,
            root_id=headers.get("root_id") if isinstance(headers.get("root_id"), str) else None,
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            errbacks=None,
            ignore_result=False,
            args=None,
            kwargs=None,
        )
        try:
            self.app.backend.mark_as_failure(task_id, error, request=request)
        except Exception:  # the result store failing must not stop the consumer
            logger.exception("taskops: could not store the failure of refused task %s", task_id)
        events = getattr(self, "event_dispatcher", None)
        if events:
            events.send("task-failed", uuid=task_id, exception=saferepr(error))


def protect_consumer(conf: Any = None, **kwargs: Any) -> None:
    """``celeryd_init``: use taskops' consumer unless the project configured a consumer of its own."""
    if conf is None:
        return
    if conf.worker_consumer == CELERY_CONSUMER:
        conf.worker_consumer = TASKOPS_CONSUMER
    elif conf.worker_consumer != TASKOPS_CONSUMER:
        logger.warning(
            "taskops: worker_consumer is %r; a task message Celery cannot handle may stop this worker "
            "(subclass %s to keep its guard)",
            conf.worker_consumer,
            TASKOPS_CONSUMER,
        )


def connect() -> None:
    """Connect :func:`protect_consumer` and the lanes (:mod:`taskops.wire.lanes`) (idempotent)."""
    celery_signals.celeryd_init.connect(protect_consumer, weak=False, dispatch_uid="taskops.intake.protect_consumer")
    celery_signals.celeryd_after_setup.connect(add_lanes, weak=False, dispatch_uid="taskops.intake.add_lanes")
