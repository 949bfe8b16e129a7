"""A Celery app without taskops: a worker of a fleet that has not been upgraded yet.

Run as ``celery -A stock_app worker`` from this folder, with no Django
settings in the environment: nothing here imports Django or taskops, so the
worker decodes with kombu's own JSON and runs Celery's own Task. Its task has
the name of a test app's task and notes each call in the log. Used by
``tests/test_fleet.py``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_ready

app = Celery("stock", broker=os.environ["STOCK_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["STOCK_QUEUE"],
    accept_content=["json"],
    task_serializer="json",
    worker_send_task_events=False,
)


@app.task(name="tests.testapp.tasks.moderate_answer")
def moderate_answer(answer: Any) -> str:
    print(f"stock worker ran moderate_answer({answer!r})", flush=True)
    return "stock"


@worker_ready.connect
def say_what_is_loaded(**kwargs: Any) -> None:
    taskops = sorted(name for name in sys.modules if name == "taskops" or name.startswith("taskops."))
    django = sys.modules.get("django.conf")
    configured = bool(django and django.settings.configured)  # Celery may import Django, never set it up here
    print(f"stock worker: taskops modules {taskops}, Django configured: {configured}", flush=True)
