"""Demo tasks over questions, answers and comments.

They take model instances and attrs objects directly; taskops carries them
over the broker as JSON references and fetches them fresh in the worker.
``count_words`` keeps the older style (a model label and an id) working.
Moderation skips an answer or comment deleted before its turn
(``on_missing="skip"``); the other tasks fail loudly on a missing row (the
default).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from celery import shared_task
from django.apps import apps
from django.core.mail import send_mass_mail
from django.db.models import Model

from demo.models import Answer, Comment, Question
from demo.reports import ThreadReport
from taskops.celery import Task

logger = logging.getLogger(__name__)

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
