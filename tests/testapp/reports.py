"""attrs argument classes: what the summarize_thread and review_question tasks are asked to do."""

from __future__ import annotations

import datetime as dt

import attrs

import taskops
from tests.testapp.models import Answer, Question


@taskops.register
@attrs.frozen
class ThreadReport:
    """A request to summarize one question's thread."""

    question: Question
    requested_at: dt.datetime
    top_n: int = 3
    note: str = ""


@taskops.register
@attrs.frozen
class ReviewRequest:
    """A request to review a question: the re-dispatch form asks for each attribute."""

    reviewer: str
    due: dt.date
    answer: Answer | None = None
    urgent: bool = False
