"""Alerts: rules (``AlertRule``), their evaluation, the alerts they open, the channels that tell them.

- :mod:`~taskops.alerts.conditions`: what each condition measures, per task name, with bounded queries;
- :mod:`~taskops.alerts.evaluate`: a round over the rules; open, count, resolve; acknowledge;
- :mod:`~taskops.alerts.channels`, :mod:`~taskops.alerts.webhook`, :mod:`~taskops.alerts.journal`:
  email, log, signal, dashboard and signed webhooks, and what each did;
- :mod:`~taskops.alerts.tasks`: the periodic evaluation for Celery beat;
- :mod:`~taskops.alerts.metrics`: Prometheus metrics from the database.

No HTTP here: the pages and the metrics view live above (:mod:`taskops.admin`, :mod:`taskops.views`).
"""

from __future__ import annotations

from taskops.alerts.evaluate import Round, acknowledge, evaluate, on_stale_start
from taskops.signals import stale_start

__all__ = ["Round", "acknowledge", "connect", "evaluate"]


def connect() -> None:
    """Judge "any missing" and "likely race" rules as soon as a task starts (idempotent)."""
    stale_start.connect(on_stale_start, weak=False, dispatch_uid="taskops.alerts.on_stale_start")
