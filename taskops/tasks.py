"""taskops' own Celery tasks, where ``app.autodiscover_tasks()`` looks for them."""

from __future__ import annotations

from taskops.alerts.tasks import evaluate_rules
from taskops.alerts.webhook import post_webhook
from taskops.redispatch.tasks import fan_out

__all__ = ["evaluate_rules", "fan_out", "post_webhook"]
