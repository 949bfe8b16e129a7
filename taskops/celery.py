"""The Celery base task of taskops.

Set it app-wide with ``Celery(..., task_cls="taskops.celery:Task")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery.contrib.django.task import DjangoTask

if TYPE_CHECKING:
    BaseTask = DjangoTask[Any, Any]
else:
    BaseTask = DjangoTask


class Task(BaseTask):
    """Base task for every task of an app that uses taskops."""

    abstract = True
