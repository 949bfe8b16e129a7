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

from taskops.refs import ModelRef
from taskops.signals import task_skipped

if TYPE_CHECKING:
    BaseTask = DjangoTask[Any, Any]
else:
    BaseTask = DjangoTask

#: The state a task is left in when a policy chose not to run it.
SKIPPED = "SKIPPED"


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
        """Replace model references in the arguments by fresh instances."""
        return args, kwargs, {}

    def check_staleness(self, objects: dict[ModelRef, Model | None]) -> None:
        """Judge the resolved objects against their dispatch snapshot; apply ``on_stale``."""

    def skip(self, reason: str) -> None:
        """Stop here without running the body; the task ends in state ``SKIPPED``."""
        task_id = self.request.id
        if task_id:
            self.update_state(state=SKIPPED, meta={"reason": reason})
        task_skipped.send(sender=type(self), task=self, task_id=task_id, reason=reason)
        raise Ignore(reason)
