"""The Celery app of the test suite, for the test process and the worker subprocess.

``task_cls`` makes every task a ``taskops.celery.Task``, as the README asks of
a project. ``tests/__init__.py`` imports it, so that it is Celery's current
app before any test module runs.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests", task_cls="taskops.celery:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
