"""Signals that taskops sends, for code that wants to react."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent in the worker when a task does not run because of a policy
#: (``on_missing="skip"`` or ``on_stale="skip"``).
#: Arguments: ``task`` (the Task), ``task_id``, ``reason`` (str).
task_skipped = Signal()
