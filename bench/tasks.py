"""The baseline of ``bench.cost``: the task as users write it without taskops.

Celery's own base ``Task`` (not the app's ``taskops.celery.Task``), the pk
on the wire and the row fetched in the body. Imported by the bench's
workers (``--include bench.tasks``). A worker started with
``TASKOPS_BENCH_PLAIN=1`` also decodes with kombu's own JSON functions, as
a worker without taskops does.
"""

from __future__ import annotations

import logging
import os

from celery import Task, shared_task
from kombu.serialization import registry  # type: ignore[attr-defined]
from kombu.utils import json as kombu_json

from demo.models import Comment
from demo.tasks import contains_banned_word

if os.environ.get("TASKOPS_BENCH_PLAIN") == "1":
    registry.register(
        "json", kombu_json.dumps, kombu_json.loads, content_type="application/json", content_encoding="utf-8"
    )
    logging.getLogger(__name__).warning("bench worker: plain Celery (kombu's JSON, recording off)")


@shared_task(base=Task)
def flag_comment_by_id(comment_id: int) -> bool:
    """``demo.tasks.flag_comment`` without taskops: the id travels, the body fetches the row."""
    comment = Comment.objects.get(pk=comment_id)
    comment.flagged = contains_banned_word(comment.body)
    comment.save(update_fields=["flagged"])
    return comment.flagged
