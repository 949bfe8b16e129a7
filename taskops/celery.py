"""The Celery base task of taskops.

Set it app-wide with ``Celery(..., task_cls="taskops.celery:Task")``. Before a
task body runs, it resolves the model references in the arguments (one query
per model class), applies the ``on_missing`` and ``on_stale`` policies, and
lets the recorder see the outcome.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from celery import states
from celery.contrib.django.task import DjangoTask
from celery.exceptions import Ignore
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult as CeleryAsyncResult
from celery.utils.log import get_task_logger
from django.db.models import Model

from taskops import codec
from taskops.codec import CodecError
from taskops.refs import MissingObjectError, ModelRef, resolve_refs
from taskops.signals import task_skipped
from taskops.staleness import check_at_start, note_resolved

if TYPE_CHECKING:
    from celery import Celery

    BaseTask = DjangoTask[Any, Any]
    BaseResult = CeleryAsyncResult[Any]
else:
    BaseTask = DjangoTask
    BaseResult = CeleryAsyncResult

__all__ = ["SKIPPED", "AsyncResult", "CodecError", "MissingObjectError", "Task", "TaskSkipped"]

logger = get_task_logger(__name__)

#: The state a task is left in when a policy chose not to run it.
SKIPPED = "SKIPPED"
ON_MISSING_CHOICES = ("fail", "skip")
#: Seconds between two looks for SKIPPED while ``AsyncResult.get`` waits.
SKIP_CHECK_INTERVAL = 1.0
ON_STALE_CHOICES = ("run", "skip", "retry", "fail")


class TaskSkipped(Exception):
    """Raised by :meth:`AsyncResult.get` for a task that a policy chose not to run."""


def option_errors(task_cls: type) -> list[str]:
    """What is wrong with a task class's ``on_missing`` / ``on_stale`` values."""
    errors = []
    for option, choices in (("on_missing", ON_MISSING_CHOICES), ("on_stale", ON_STALE_CHOICES)):
        value = getattr(task_cls, option, None)
        if value not in choices:
            name = task_cls.__dict__.get("name") or f"{task_cls.__module__}.{task_cls.__qualname__}"
            errors.append(f"task {name}: {option} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return errors


class Task(BaseTask):
    """Base task for every task of an app that uses taskops."""

    abstract = True
    #: A referenced row is gone when the task starts: ``"fail"`` or ``"skip"``.
    on_missing: str = "fail"
    #: A referenced row changed since dispatch: ``"run"``, ``"skip"``, ``"retry"`` or ``"fail"``.
    on_stale: str = "run"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Celery builds a subclass per task, with the decorator's options as
        # class attributes: a typo in them fails here, at definition.
        super().__init_subclass__(**kwargs)
        errors = option_errors(cls)
        if errors:
            raise ValueError("; ".join(errors))

    @classmethod
    def on_bound(cls, app: Celery) -> None:
        """Register the attrs classes named by the task's annotations, so that they may be decoded."""
        super().on_bound(app)
        run = cls.__dict__.get("run")
        if run is not None:
            codec.attrs_registry.note_annotations(getattr(run, "__func__", run))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs, objects = self.resolve_arguments(args, kwargs)
        self.check_staleness(objects)
        return super().__call__(*args, **kwargs)

    def resolve_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], dict[ModelRef, Model | None]]:
        """Replace model references in the arguments by fresh instances, build attrs objects.

        One query per model class for the whole message; ``on_missing``
        decides what a missing row means; anything the decoder refused
        raises :class:`~taskops.codec.CodecError` naming where it is.
        """
        refs: set[ModelRef] = set()
        codec.collect_refs(args, refs, root="args")
        codec.collect_refs(kwargs, refs, root="kwargs")
        objects = resolve_refs(refs) if refs else {}
        note_resolved(self, objects)  # drift is judged (and kept) even if on_missing stops the task below
        missing = sorted(str(ref) for ref, obj in objects.items() if obj is None)
        if missing:
            self.apply_on_missing(missing)
        return (
            tuple(codec.substitute(args, objects, root="args")),
            codec.substitute(kwargs, objects, root="kwargs"),
            objects,
        )

    def apply_on_missing(self, missing: list[str]) -> None:
        """A referenced row is gone: fail (default) or skip, as ``on_missing`` says."""
        reason = f"{self.name}: referenced object(s) no longer exist: {', '.join(missing)}"
        if self.on_missing == "skip":
            self.skip(reason)
        raise MissingObjectError(reason)

    def check_staleness(self, objects: dict[ModelRef, Model | None]) -> None:
        """Judge the resolved objects against their dispatch snapshot; apply ``on_stale``."""
        check_at_start(self, objects)

    def skip(self, reason: str) -> None:
        """Stop here without running the body; the task ends in state ``SKIPPED``."""
        task_id = self.request.id
        logger.warning("Task %s[%s] skipped: %s", self.name, task_id, reason)
        if task_id and not self.request.is_eager:
            self.update_state(state=SKIPPED, meta={"reason": reason})
        task_skipped.send(sender=type(self), task=self, task_id=task_id, reason=reason)
        raise Ignore(reason)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult:
        """The result handle ``delay``/``apply_async`` return: it resolves refs in results."""
        return AsyncResult(task_id, backend=self.backend, task_name=self.name, app=self.app, **kwargs)


class AsyncResult(BaseResult):
    """A result handle that gives model instances and attrs objects, never placeholders.

    A task's return value travels through the codec like its arguments: a
    model instance comes back as a reference, fetched here (in the client) with
    one query per model class. A row deleted meanwhile raises
    :class:`~taskops.refs.MissingObjectError`. :meth:`get` of a skipped task
    raises :class:`TaskSkipped` instead of waiting forever (Celery's wait
    loop only ends on its own ready states).
    """

    def _maybe_set_cache(self, meta: dict[str, Any] | None) -> Any:
        if meta and meta.get("status") not in states.EXCEPTION_STATES and codec.has_placeholders(meta.get("result")):
            meta = {**meta, "result": codec.resolve(meta["result"], root="result")}
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
