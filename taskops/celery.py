"""The Celery base task of taskops.

Set it app-wide with ``Celery(..., task_cls="taskops.celery:Task")``. Before a
task body runs, it resolves the model references in the arguments (one query
per model class), applies the ``on_missing`` and ``on_stale`` policies, and
lets the recorder see the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.contrib.django.task import DjangoTask
from celery.exceptions import Ignore
from django.db.models import Model

from taskops.codec import AttrsPlaceholder, CodecError, Invalid, RefListPlaceholder, RefPlaceholder
from taskops.refs import ModelRef, resolve_refs
from taskops.signals import task_skipped
from taskops.staleness import check_at_start, note_resolved
from taskops.structure import converter

if TYPE_CHECKING:
    BaseTask = DjangoTask[Any, Any]
else:
    BaseTask = DjangoTask

#: The state a task is left in when a policy chose not to run it.
SKIPPED = "SKIPPED"
ON_MISSING_CHOICES = ("fail", "skip")
ON_STALE_CHOICES = ("run", "skip", "retry", "fail")


class MissingObjectError(LookupError):
    """A row that the task's arguments referenced is gone (``on_missing="fail"``)."""


class Task(BaseTask):
    """Base task for every task of an app that uses taskops."""

    abstract = True
    #: A referenced row is gone when the task starts: ``"fail"`` or ``"skip"``.
    on_missing: str = "fail"
    #: A referenced row changed since dispatch: ``"run"``, ``"skip"``, ``"retry"`` or ``"fail"``.
    on_stale: str = "run"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs, objects = self.resolve_arguments(args, kwargs)
        self.check_staleness(objects)
        return super().__call__(*args, **kwargs)

    def resolve_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], dict[ModelRef, Model | None]]:
        """Replace model references in the arguments by fresh instances.

        One query per model class for the whole message; ``on_missing``
        decides what a missing row means.
        """
        refs: set[ModelRef] = set()
        collect_refs(args, refs)
        collect_refs(kwargs, refs)
        objects = resolve_refs(refs) if refs else {}
        note_resolved(self, objects)  # drift is judged (and kept) even if on_missing stops the task below
        missing = sorted((str(ref) for ref, obj in objects.items() if obj is None))
        if missing:
            self.apply_on_missing(missing)
        return tuple(substitute(args, objects)), substitute(kwargs, objects), objects

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
        if task_id and not self.request.is_eager:
            self.update_state(state=SKIPPED, meta={"reason": reason})
        task_skipped.send(sender=type(self), task=self, task_id=task_id, reason=reason)
        raise Ignore(reason)


def collect_refs(value: Any, into: set[ModelRef]) -> None:
    """Gather every ref in decoded arguments; raise for anything the decoder refused."""
    if isinstance(value, RefPlaceholder):
        into.add(value.ref)
    elif isinstance(value, RefListPlaceholder):
        into.update(value.refs)
    elif isinstance(value, AttrsPlaceholder):
        collect_refs(value.data, into)
    elif isinstance(value, Invalid):
        raise CodecError(value.error)
    elif isinstance(value, list | tuple):
        for item in value:
            collect_refs(item, into)
    elif isinstance(value, dict):
        for item in value.values():
            collect_refs(item, into)


def substitute(value: Any, objects: dict[ModelRef, Model | None]) -> Any:
    """Decoded arguments with refs replaced by instances and attrs data structured."""
    if isinstance(value, RefPlaceholder):
        return objects[value.ref]
    if isinstance(value, RefListPlaceholder):
        return [objects[ref] for ref in value.refs]
    if isinstance(value, AttrsPlaceholder):
        try:
            return converter.structure(substitute(value.data, objects), value.cls)
        except Exception as exc:
            raise CodecError(f"cannot build {value.cls.__qualname__} from its data: {exc}") from exc
    if isinstance(value, list):
        return [substitute(item, objects) for item in value]
    if isinstance(value, tuple):
        return tuple(substitute(item, objects) for item in value)
    if isinstance(value, dict):
        return {key: substitute(item, objects) for key, item in value.items()}
    return value
