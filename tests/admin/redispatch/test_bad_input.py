"""Every kind of bad input the re-dispatch paths meet, in one table: a clear message, and nothing published.

The form (``review_question`` for questions) and ``taskops_redispatch``
(``touch_book`` for books) ask the same service; each case goes through the
path that can say it. Nothing published means: no message left
(``after_task_publish``), none waiting in the target queue on the broker,
no ``Dispatch``, no ``Redispatch``.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from taskops.models import Dispatch, Redispatch
from tests.admin.redispatch.conftest import FORM, IDLE, review_data
from tests.redispatch.conftest import purge, queued
from tests.testapp.models import Book, Question
from tests.testapp.tasks import add, read_body, touch_book

pytestmark = pytest.mark.django_db

FORM_PATH, COMMAND = "form", "command"

#: (what, path, changes to a good request, settings, what the message says).
BAD_INPUT: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    ("unknown task", COMMAND, {"task": "no.such.task"}, {}, "No task named 'no.such.task' is registered."),
    ("task not allowed", COMMAND, {"task": add.name}, {}, f"Task '{add.name}' may not be re-dispatched"),
    ("unknown model", COMMAND, {"model": "testapp.nothing"}, {}, "No model 'testapp.nothing' is installed."),
    (
        "model not allowed",
        COMMAND,
        {},
        {"ALLOWED_MODELS": ["testapp.question"]},
        "Model 'testapp.book' is not in TASKOPS['ALLOWED_MODELS'].",
    ),
    ("missing ids", FORM_PATH, {"arg-question": ["999999"]}, {}, "Select a valid choice. 999999 is not one"),
    ("a non-integer pk for an int pk", FORM_PATH, {"arg-question": ["abc"]}, {}, "“abc” is not a valid value."),
    ("a non-integer pk, by command", COMMAND, {"ids": "abc"}, {}, "'abc' is not a valid pk for testapp.book."),
    ("malformed JSON", COMMAND, {"kwargs_json": '{"note": '}, {}, "--kwargs-json is not JSON"),
    (
        "arguments not matching the signature",
        COMMAND,
        {"kwargs_json": '{"pages": 3}'},
        {},
        "got an unexpected keyword argument 'pages'",
    ),
    ("over the cap", FORM_PATH, {}, {"REDISPATCH_MAX_CALLS": 1}, "2 objects, more than the 1 one re-dispatch may take"),
    ("missing reason", FORM_PATH, {"reason": "  "}, {}, "Say why: the reason is kept in the audit."),
    ("a forged task", FORM_PATH, {"task": read_body.name}, {}, f"The form does not offer task {read_body.name}"),
    ("a forged model", FORM_PATH, {"model": "auth.user"}, {}, "The form does not offer model auth.user"),
]


def through_form(client: Client, changes: dict[str, Any]) -> str:
    chosen = Question.objects.order_by("pk")
    response = client.post(FORM, review_data(*chosen, **changes))
    assert response.status_code == 200
    return response.content.decode()


def through_command(book: Book, changes: dict[str, Any]) -> str:
    options: dict[str, Any] = {
        "task": touch_book.name,
        "model": "testapp.book",
        "ids": str(book.pk),
        "kwargs_json": '{"note": "again"}',
        "reason": "the import missed them",
        "user": "operator",
        "queue": IDLE,
        **changes,
    }
    args = [item for name, value in options.items() for item in (f"--{name.replace('_', '-')}", value)]
    with pytest.raises(CommandError) as refused:
        call_command("taskops_redispatch", *args, stdout=io.StringIO())
    return str(refused.value)


@pytest.mark.parametrize(
    ("what", "path", "changes", "taskops", "message"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input_is_refused_clearly_and_publishes_nothing(
    client: Client,
    role: Any,
    published: list[Any],
    what: str,
    path: str,
    changes: dict[str, Any],
    taskops: dict[str, Any],
    message: str,
) -> None:
    operator: User = role("operator")
    client.force_login(operator)
    for i in range(2):
        Question.objects.create(title=f"q{i}", body="b")
    book = Book.objects.create(title="b")
    purge(IDLE)

    with override_settings(TASKOPS=taskops):
        said = through_form(client, changes) if path == FORM_PATH else through_command(book, changes)

    assert message in said
    assert published == []
    assert queued(IDLE) == 0
    assert not Dispatch.objects.exists()
    assert not Redispatch.objects.exists()


def test_the_queue_count_sees_a_good_request(client: Client, role: Any, published: list[Any]) -> None:
    """The table's ``queued(IDLE) == 0`` could not pass by looking at the wrong place."""
    client.force_login(role("operator"))
    book = Book.objects.create(title="b")
    purge(IDLE)

    call_command(
        "taskops_redispatch",
        *("--task", touch_book.name, "--model", "testapp.book", "--ids", str(book.pk)),
        *("--reason", "r", "--user", "operator", "--queue", IDLE),
        stdout=io.StringIO(),
    )

    assert queued(IDLE) == 1
    assert len(published) == 1
