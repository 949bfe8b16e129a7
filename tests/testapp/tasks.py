"""Test-only tasks.

The first group takes the seed article's models (the shapes and options of a
real project's tasks): model instances and attrs objects directly, and
``count_words`` in the older style (a model label and an id). Moderation skips
an answer or comment deleted before its turn (``on_missing="skip"``); the
others fail loudly on a missing row (the default). The second group exercises
one feature each.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import time
import uuid
from typing import Any

from celery import shared_task
from django.apps import apps
from django.core.mail import send_mass_mail
from django.db.models import F, Model

from taskops.celery import Task
from tests.testapp.models import Answer, Book, Comment, Question
from tests.testapp.reports import ReviewRequest, ThreadReport

#: Words that get an answer or comment rejected or flagged.
BANNED_WORDS = frozenset({"spam", "scam", "viagra"})


def contains_banned_word(text: str) -> bool:
    return any(word in BANNED_WORDS for word in re.findall(r"[a-z]+", text.lower()))


@shared_task(base=Task, on_missing="skip")
def moderate_answer(answer: Answer) -> str:
    """Approve or reject an answer by its body."""
    answer.status = Answer.Status.REJECTED if contains_banned_word(answer.body) else Answer.Status.APPROVED
    answer.save(update_fields=["status", "updated_at"])
    return answer.status


@shared_task(base=Task, on_missing="skip")
def flag_comment(comment: Comment) -> bool:
    """Flag a comment whose body contains a banned word."""
    comment.flagged = contains_banned_word(comment.body)
    comment.save(update_fields=["flagged"])
    return comment.flagged


@shared_task
def notify_followers(question: Question, message: str = "") -> int:
    """Mail every follower of a question; returns how many were mailed."""
    recipients = [user.email for user in question.followers.all() if user.email]
    text = message or f"New activity on: {question.title}"
    mails = [(f"[Q&A] {question.title}", text, None, [email]) for email in recipients]
    return send_mass_mail(mails, fail_silently=False) if mails else 0


@shared_task
def rebuild_summary(question: Question, answers: list[Answer]) -> str:
    """Rebuild a question's summary from the given answers, best first."""
    lines = [f"{len(answers)} answer(s) to: {question.title}"]
    lines += [f"- ({answer.score}) {answer.body[:80]}" for answer in answers]
    question.summary = "\n".join(lines)
    question.save(update_fields=["summary", "updated_at"])
    return question.summary


@shared_task
def summarize_thread(report: ThreadReport) -> dict[str, Any]:
    """Summarize a question's thread as asked by a ThreadReport."""
    top = list(report.question.answers.order_by("-score")[: report.top_n])
    return {
        "question": report.question.pk,
        "requested_at": report.requested_at.isoformat(),
        "top_answers": [answer.pk for answer in top],
        "words": sum(len(answer.body.split()) for answer in top),
        "note": report.note,
    }


@shared_task
def best_answer(question: Question) -> Answer | None:
    """The best-scored answer: a model instance as a result, fetched again by whoever reads it."""
    return question.answers.order_by("-score", "pk").first()


@shared_task
def count_words(model_name: str, object_id: int) -> int:
    """The older style: a model label and an id, resolved with apps.get_model."""
    model: type[Model] = apps.get_model(model_name)
    instance = model._default_manager.get(pk=object_id)
    return len(str(getattr(instance, "body", "")).split())


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


#: Seconds ``read_body_or_retry`` waits before its next attempt: short, and not the option's default.
STALE_RETRY_SECONDS = 1.5


@shared_task(on_stale="retry", stale_retry_countdown=STALE_RETRY_SECONDS)  # type: ignore[call-overload]  # taskops Task options
def read_body_or_retry(question: Question) -> str:
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


# --- re-dispatch: tasks that opted in (``redispatch=True``) ------------------------


@shared_task(redispatch=True)  # type: ignore[call-overload]  # a taskops Task option
def touch_book(book: Book, note: str = "", times: int = 1) -> str:
    """Count a visit on the book (its pages), so that a test sees every run."""
    Book.objects.filter(pk=book.pk).update(pages=F("pages") + times)
    return f"{book.title}:{note}"


@shared_task(redispatch=True)  # type: ignore[call-overload]  # a taskops Task option
def count_books(books: list[Book], label: str = "") -> int:
    return len(books)


@shared_task(redispatch=True)  # type: ignore[call-overload]  # a taskops Task option
def pair_books(first: Book, second: Book) -> int:
    """Two parameters take a Book: a re-dispatch must say which one the objects go to."""
    return int(first.pk) + int(second.pk)


@shared_task(redispatch=True)  # type: ignore[call-overload]  # a taskops Task option
def review_question(question: Question, review: ReviewRequest, copies: int) -> str:
    """A model, an attrs object and an int: the generic form's whole range. Leaves its trace in the summary."""
    note = f"{copies} review(s) by {review.reviewer}, due {review.due.isoformat()}"
    if review.answer is not None:
        note += f", on answer {review.answer.pk}"
    Question.objects.filter(pk=question.pk).update(summary=note)
    return note


# ``extra`` is unannotated on purpose: the form gives it a JSON input.
@shared_task(redispatch=True)  # type: ignore[call-overload]  # a taskops Task option
def price_book(book: Book, price: decimal.Decimal, at: dt.datetime, batch: uuid.UUID, extra) -> str:
    """The generic form's typed inputs: an exact decimal, an aware datetime, a UUID, JSON for the unannotated."""
    return f"{book.pk}: {price} at {at.isoformat()} ({batch}) {extra!r}"


@shared_task(acks_late=True)
def wait_for_release(path: str) -> str:
    """Run until the file ``path`` exists (a long task that a test ends when it chooses)."""
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return path
