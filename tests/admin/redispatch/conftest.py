"""Users for every permission the re-dispatch pages ask for, what was published, and the form's requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.admin.test_browser import browser, page  # noqa: F401  (the browser tests' fixtures)
from tests.redispatch.conftest import IDLE, make_user, published  # noqa: F401  (fixtures, and the idle queue)

__all__ = ["IDLE"]
from tests.testapp.models import Question
from tests.testapp.tasks import review_question

FORM = reverse("admin:taskops_dispatch_redispatch")
AUTOCOMPLETE = reverse("admin:taskops_dispatch_redispatch_autocomplete")
CHANGELIST = reverse("admin:taskops_dispatch_changelist")
QUESTIONS = reverse("admin:testapp_question_changelist")
HTMX = {"HX-Request": "true"}

#: The permissions of each kind of user the pages meet (all staff).
ROLES: dict[str, tuple[str, ...]] = {
    "staff": (),
    "viewer": ("taskops.view_dispatch", "taskops.view_redispatch", "testapp.view_question"),
    "blind": ("taskops.view_dispatch", "taskops.redispatch_dispatch"),
    "operator": (
        "taskops.view_dispatch",
        "taskops.redispatch_dispatch",
        "testapp.view_question",
        "testapp.view_answer",
        "testapp.view_book",
    ),
}


@pytest.fixture
def role(make_user: Callable[..., User]) -> Callable[[str], User]:  # noqa: F811  (the imported fixture)
    """A user of a role (``ROLES``, or ``superuser``)."""

    def make(name: str) -> User:
        if name == "superuser":
            return make_user(name, superuser=True)
        return make_user(name, *ROLES[name])

    return make


@pytest.fixture
def operator_client(client: Client, role: Callable[[str], User]) -> Client:
    client.force_login(role("operator"))
    return client


@pytest.fixture
def questions(db: None) -> list[Question]:
    return [Question.objects.create(title=f"Stale question {i}", body="why?") for i in range(3)]


def review_data(*chosen: Question, **changes: Any) -> dict[str, Any]:
    """A good POST of the form for ``review_question`` (to the idle queue: nothing runs)."""
    data: dict[str, Any] = {
        "task": review_question.name,
        "model": "testapp.question",
        "arg-question": [str(q.pk) for q in chosen],
        "arg-review-reviewer": "ada",
        "arg-review-due": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
        "arg-copies": "2",
        "queue": IDLE,
        "reason": "the nightly reviews were lost",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}
