"""Fixtures of the recording tests: messages to a queue nobody reads, content types cached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import after_task_publish
from django.contrib.contenttypes.models import ContentType

from tests.celery_app import app
from tests.testapp.models import Answer, Book, Question, Tag

#: A queue no worker consumes: these tests only look at the publish side.
IDLE = "taskops-tests-idle"


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """The headers of every message published during the test (to a queue nobody reads)."""
    captured: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        captured.append(dict(headers or {}))

    after_task_publish.connect(capture, weak=False, dispatch_uid="tests.capture")
    yield captured
    after_task_publish.disconnect(dispatch_uid="tests.capture")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(IDLE)  # type: ignore[attr-defined]


@pytest.fixture
def content_types(transactional_db: None) -> None:
    """Content types cached up front, as in any process after its first dispatch."""
    ContentType.objects.get_for_models(Question, Answer, Book, Tag)
