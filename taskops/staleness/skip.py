"""How a skipped task ends, in terms every Celery consumer already understands.

A policy (``on_missing="skip"``, ``on_stale="skip"``) decides not to run a
task. Celery's nearest notion is a revoked task, and its own expiry, a
freshness policy too, ends that way (``task-revoked`` with ``expired``). So a
skip ends the same way: the result backend stores state ``REVOKED`` with a
:class:`TaskSkipped` exception that carries the reason, and the worker sends
``task-revoked`` with that exception (Flower's state machine,
``celery.events.state``, treats it as final). taskops' own record keeps the
finer state ``SKIPPED``.
"""

from __future__ import annotations

from celery.exceptions import Ignore, TaskRevokedError


class TaskSkipped(TaskRevokedError):
    """A task a policy chose not to run; ``str()`` is the reason.

    Stored as the task's result (state ``REVOKED``) and raised by
    ``AsyncResult.get()``; a ``TaskRevokedError``, so code that handles
    revoked tasks handles skipped ones too.
    """


class Skip(Ignore):
    """Raised by the Task base to stop a skipped task: the worker's main process sends ``task-revoked``."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else ""
