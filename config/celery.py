"""The Celery app of the host project.

``task_cls`` makes every task a ``taskops.celery.Task``, which resolves model
references before the task body runs and records what happened.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config", task_cls="taskops.celery:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
