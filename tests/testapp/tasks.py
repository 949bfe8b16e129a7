"""Test-only tasks."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from demo.models import Question
from tests.testapp.models import Book


@shared_task
def add(x: int, y: int) -> int:
    return x + y


@shared_task
def total(numbers: list[int]) -> int:
    return sum(numbers)


@shared_task
def read_body(question: Question) -> str:
    """Leave a trace (a Book) that the body ran, then return what it read."""
    Book.objects.create(title=f"ran for question {question.pk}")
    return question.body


@shared_task(on_stale="skip")  # type: ignore[call-overload]  # a taskops Task option
def read_body_or_skip(question: Question) -> str:
    Book.objects.create(title=f"ran for question {question.pk}")
    return question.body


@shared_task(track_started=False)
def read_body_untracked(question: Question) -> str:
    """Like read_body, without the result backend's STARTED write before the body.

    On SQLite a worker write waits for any open write transaction; the race
    test needs the worker to read (and find the row missing) first.
    """
    return question.body


@shared_task
def count_refs(questions: list[Question], books: list[Book]) -> int:
    return len(questions) + len(books)


@shared_task(bind=True, max_retries=5)
def retry_twice(self: Any) -> int:
    if self.request.retries < 2:
        raise self.retry(countdown=0.1)
    return int(self.request.retries)


@shared_task(acks_late=True)
def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
