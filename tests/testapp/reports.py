"""An attrs argument class: what the summarize_thread task is asked to do."""

from __future__ import annotations

import datetime as dt

import attrs

import taskops
from tests.testapp.models import Question


@taskops.register
@attrs.frozen
class ThreadReport:
    """A request to summarize one question's thread."""

    question: Question
    requested_at: dt.datetime
    top_n: int = 3
    note: str = ""
