"""Signals that taskops sends, for code that wants to react."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent in the worker when a task does not run because of a policy
#: (``on_missing="skip"`` or ``on_stale="skip"``).
#: Arguments: ``task`` (the Task), ``task_id``, ``reason`` (str).
task_skipped = Signal()

#: Sent in the worker when a task starts and finds a referenced row missing, or a likely race.
#: Arguments: ``task_name``, ``task_id``, ``missing`` (bool), ``likely_race`` (bool).
stale_start = Signal()

#: Sent when an alert opens, and when it resolves. Argument: ``alert`` (a ``taskops.Alert``).
alert_opened = Signal()
alert_resolved = Signal()
