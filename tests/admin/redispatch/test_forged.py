"""Requests the pages never make: a task, parameter, model, object or ticket the form did not offer.

Each is refused with a message that says what, and nothing is published:
no message leaves (``after_task_publish``), no ``Dispatch``, no
``Redispatch``, no confirmation ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from taskops.admin.redispatch import tickets
from taskops.models import Dispatch, Redispatch, RedispatchTicket
from tests.admin.redispatch.conftest import AUTOCOMPLETE, FORM, HTMX, review_data
from tests.factories import make_dispatch
from tests.testapp.models import Book, Question
from tests.testapp.tasks import add, pair_books, read_body, review_question, touch_book

pytestmark = pytest.mark.django_db


def nothing_happened(published: list[Any]) -> None:
    assert published == []
    assert not Dispatch.objects.exists()
    assert not Redispatch.objects.exists()
    assert not RedispatchTicket.objects.filter(purpose="confirmation").exists()


#: (what, changes to a good POST, the input that says so, what it says).
FORGED: list[tuple[str, dict[str, Any], str, str]] = [
    ("no such task", {"task": "no.such.task"}, "task", "The form does not offer task no.such.task"),
    ("a task re-dispatch does not allow", {"task": read_body.name}, "task", f"does not offer task {read_body.name}"),
    ("an allowed task's neighbour", {"task": add.name}, "task", f"does not offer task {add.name}"),
    ("a model the parameter does not take", {"model": "auth.user"}, "model", "does not offer model auth.user"),
    ("another test model", {"model": "testapp.book"}, "model", "does not offer model testapp.book"),
    ("an object that does not exist", {"arg-question": ["999999"]}, "arg-question", "Select a valid choice"),
    ("a pk that cannot be one", {"arg-question": ["x'; drop"]}, "arg-question", "is not a valid value"),
    ("an answer as the question", {"arg-review-answer": "999999"}, "arg-review-answer", "Select a valid choice"),
]


@pytest.mark.parametrize(("what", "changes", "field", "message"), FORGED, ids=[case[0] for case in FORGED])
def test_a_forged_preview_is_refused(
    operator_client: Client,
    questions: list[Question],
    published: list[Any],
    what: str,
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = operator_client.post(FORM, review_data(questions[0], **changes), headers=HTMX)

    assert response.status_code == 200
    errors = response.context_data["form"].errors  # type: ignore[index]
    assert any(message in text for text in errors[field]), errors
    assert message in response.content.decode()  # shown, in the partial htmx swaps in
    nothing_happened(published)


def test_a_forged_parameter_is_refused(operator_client: Client, published: list[Any]) -> None:
    data = {"task": pair_books.name, "parameter": "third", "model": "testapp.book", "reason": "r"}

    response = operator_client.post(FORM, data)

    assert response.context["form"].errors["parameter"] == ["The form does not offer parameter third for the objects."]
    nothing_happened(published)


@pytest.mark.parametrize("ticket", ["", "not-a-ticket", "x" * 500])
def test_a_forged_confirmation_publishes_nothing(operator_client: Client, published: list[Any], ticket: str) -> None:
    response = operator_client.post(FORM, {"confirm": ticket, **review_data()})

    assert response.status_code == 302
    assert response["Location"] == FORM
    assert any("confirmed already" in str(m) for m in response.wsgi_request._messages)  # type: ignore[attr-defined]
    nothing_happened(published)


def test_another_users_confirmation_publishes_nothing(
    operator_client: Client, questions: list[Question], published: list[Any], role: Any
) -> None:
    theirs = Client()
    theirs.force_login(role("superuser"))
    html = theirs.post(FORM, review_data(questions[0])).content.decode()
    ticket = html.split('name="confirm" value="')[1].split('"')[0]

    response = operator_client.post(FORM, {"confirm": ticket})

    assert response.status_code == 302
    assert RedispatchTicket.objects.filter(token=ticket).exists()  # still theirs, unused
    assert published == []
    assert not Redispatch.objects.exists()


def test_another_users_selection_is_not_found(operator_client: Client, questions: list[Question], role: Any) -> None:
    theirs = Client()
    theirs.force_login(role("superuser"))
    response = theirs.post(
        "/admin/testapp/question/", {"action": "taskops_run_task", "_selected_action": [questions[0].pk], "index": 0}
    )
    token = response["Location"].split("selection=")[1]

    page = operator_client.get(FORM, {"selection": token})

    assert page.context["selection"] is None
    assert any("selection has expired" in str(m) for m in page.context["messages"])


FORGED_SEARCHES: list[tuple[str, dict[str, str]]] = [
    ("no such task", {"task": "no.such.task"}),
    ("a task not allowed", {"task": read_body.name}),
    ("an input the task has not", {"field_name": "arg-book"}),
    ("an input that takes no objects", {"field_name": "arg-copies"}),
    ("a model the input does not take", {"app_label": "auth", "model_name": "user"}),
    ("nothing at all", {"task": "", "field_name": "", "app_label": "", "model_name": ""}),
]


@pytest.mark.parametrize(("what", "changes"), FORGED_SEARCHES, ids=[case[0] for case in FORGED_SEARCHES])
def test_a_forged_search_is_refused(operator_client: Client, what: str, changes: dict[str, str]) -> None:
    User.objects.create_user("findme", password="x")
    params = {
        "task": review_question.name,
        "field_name": "arg-question",
        "app_label": "testapp",
        "model_name": "question",
        "term": "findme",
        **changes,
    }

    response = operator_client.get(AUTOCOMPLETE, params)

    assert response.status_code == 403
    assert b"findme" not in response.content


NUL = "\x00"
CHANGELIST = reverse("admin:taskops_dispatch_changelist")

#: POSTs an operator can forge with a NUL byte (a text column refuses it on PostgreSQL, a JSON one too):
#: (what, URL, the POST given the questions and a dispatch's pk).
HOSTILE_POSTS: list[tuple[str, str, Callable[[list[Question], int], dict[str, Any]]]] = [
    ("preview: a value", FORM, lambda qs, d: review_data(qs[0], reason=f"r{NUL}")),
    ("preview: an object's pk", FORM, lambda qs, d: review_data(qs[0], **{"arg-question": [f"{qs[0].pk}{NUL}"]})),
    ("preview: an extra key kept", FORM, lambda qs, d: {**review_data(qs[0]), f"x{NUL}": "1"}),
    ("preview: an extra value kept", FORM, lambda qs, d: {**review_data(qs[0]), "extra": f"a{NUL}b"}),
    ("preview: the selection", FORM, lambda qs, d: review_data(qs[0], selection=f"s{NUL}")),
    ("the choose button", FORM, lambda qs, d: {"task": f"{review_question.name}{NUL}", "_choose": "1"}),
    ("the confirmation", FORM, lambda qs, d: {"confirm": f"t{NUL}"}),
    (
        "the replay's ticket",
        CHANGELIST,
        lambda qs, d: {
            "action": "redispatch_selected",
            helpers.ACTION_CHECKBOX_NAME: [str(d)],
            "post": "yes",
            "ticket": f"t{NUL}",
            "reason": "r",
        },
    ),
    (
        "the replay's selection",
        CHANGELIST,
        lambda qs, d: {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: [f"{d}{NUL}"]},
    ),
]


@pytest.mark.parametrize(("what", "url", "post"), HOSTILE_POSTS, ids=[what for what, _url, _post in HOSTILE_POSTS])
def test_a_nul_byte_posted_is_a_400_and_stores_nothing(
    operator_client: Client,
    questions: list[Question],
    published: list[Any],
    what: str,
    url: str,
    post: Callable[[list[Question], int], dict[str, Any]],
) -> None:
    dispatch = make_dispatch(Book.objects.create(title="b"), task_name=touch_book.name)
    Dispatch.objects.exclude(pk=dispatch.pk).delete()

    response = operator_client.post(url, post(questions, dispatch.pk), headers=HTMX)

    assert response.status_code == 400
    assert published == []
    assert list(Dispatch.objects.all()) == [dispatch]
    assert not Redispatch.objects.exists()
    assert not RedispatchTicket.objects.exists()


@pytest.mark.parametrize("purpose", list(RedispatchTicket.Purpose))
def test_a_token_with_a_nul_byte_finds_no_ticket(role: Any, purpose: RedispatchTicket.Purpose) -> None:
    """Not looked up at all: PostgreSQL refuses NUL in a text comparison."""
    user = role("operator")
    token = tickets.issue(user, purpose)

    assert tickets.find(user, purpose, token) is not None
    assert tickets.find(user, purpose, f"{token[:10]}{NUL}") is None
    assert tickets.use(user, purpose, NUL) is None
