"""``taskops_redispatch``: the service's checks and audit from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from taskops import recording
from taskops.models import Dispatch, Redispatch
from tests.redispatch.conftest import IDLE
from tests.testapp.models import Book, Country
from tests.testapp.tasks import touch_book

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("taskops_redispatch", *args, "--queue", IDLE, stdout=out)
    return out.getvalue()


def for_books(*books: Book, user: str = "operator", **extra: str) -> list[str]:
    args = ["--task", touch_book.name, "--model", "testapp.book", "--ids", ",".join(str(b.pk) for b in books)]
    args += ["--reason", "import fixed", "--user", user]
    for option, value in extra.items():
        args += [f"--{option.replace('_', '-')}", value]
    return args


def test_publishes_for_objects_and_audits(operator: User, published: list[dict[str, Any]]) -> None:
    books = [Book.objects.create(title=str(i)) for i in range(2)]
    output = run(*for_books(*books, kwargs_json='{"note": "cli"}'))
    redispatch = Redispatch.objects.get()
    assert output.strip() == f"Re-dispatch #{redispatch.pk}: published 2, skipped 0."
    assert (redispatch.user, redispatch.reason, redispatch.published) == (operator, "import fixed", 2)
    assert len(published) == 2


def test_a_broker_that_is_down_exits_non_zero_and_keeps_the_audit(
    operator: User, published: list[dict[str, Any]], broker_down: None
) -> None:
    book = Book.objects.create(title="a")

    with pytest.raises(CommandError, match=r"stopped: OperationalError.*; 0 of 1 published\. The rest can be resumed"):
        run(*for_books(book))

    assert Redispatch.objects.get().outcome == Redispatch.Outcome.FAILED
    assert published == []


def test_dry_run_says_and_publishes_nothing(operator: User, published: list[dict[str, Any]]) -> None:
    book = Book.objects.create(title="a")
    assert run(*for_books(book), "--dry-run").strip() == f"Would publish 1 call(s) of {touch_book.name}."
    assert published == []
    assert not Redispatch.objects.exists()


def test_filter_json_selects_the_objects(operator: User, published: list[dict[str, Any]]) -> None:
    Book.objects.create(title="thin", pages=1)
    thick = Book.objects.create(title="thick", pages=500)
    args = ["--task", touch_book.name, "--model", "testapp.book", "--filter-json", '{"pages__gte": 100}']
    run(*args, "--reason", "thick ones", "--user", "operator")
    assert recording.flush()
    assert Dispatch.objects.get(operation__isnull=False).refs.get().object_pk == str(thick.pk)


def test_replays_dispatches(operator: User, published: list[dict[str, Any]]) -> None:
    book = Book.objects.create(title="a")
    source = touch_book.apply_async((book,), queue=IDLE)
    assert recording.flush()
    dispatch = Dispatch.objects.get(task_id=source.id)
    output = run("--dispatch", str(dispatch.pk), "--reason", "again", "--user", "operator")
    assert "published 1, skipped 0" in output
    assert recording.flush()
    assert Dispatch.objects.get(redispatch_of=dispatch).dispatched_by == operator


def by_ids(book: Book, task: str = touch_book.name) -> list[str]:
    return ["--task", task, "--model", "testapp.book", "--ids", str(book.pk), "--reason", "r", "--user", "operator"]


def by_filter(book: Book) -> list[str]:
    return ["--task", touch_book.name, "--model", "testapp.book", "--filter-json", '{"colour": 1}', *REASON_AND_USER]


REASON_AND_USER = ["--reason", "r", "--user", "operator"]
FORGED_ENVELOPE = '{"note": {"__type__": "x", "__value__": 1}}'

BAD: list[tuple[str, Callable[[Book], list[str]], str]] = [
    ("malformed kwargs JSON", lambda b: for_books(b, kwargs_json="{"), "--kwargs-json is not JSON"),
    ("kwargs not an object", lambda b: for_books(b, kwargs_json="[1]"), "--kwargs-json must be a JSON object"),
    ("a refused envelope", lambda b: for_books(b, kwargs_json=FORGED_ENVELOPE), "unknown type marker"),
    ("unknown user", lambda b: for_books(b, user="nobody"), "no user 'nobody'"),
    ("unknown task", lambda b: by_ids(b, task="no.task"), "No task named 'no.task'"),
    ("a bad filter field", by_filter, "--filter-json: Cannot resolve keyword 'colour'"),
    ("ids without a task", lambda b: by_ids(b)[2:], "need --task and --model"),
    ("an unknown dispatch", lambda b: ["--dispatch", "999999", *REASON_AND_USER], "No dispatch with id 999999"),
    ("a pk that is not an integer", lambda b: [*by_ids(b)[:5], "x", *REASON_AND_USER], "'x' is not a valid pk"),
]


@pytest.mark.parametrize(("what", "arguments", "message"), BAD, ids=[case[0] for case in BAD])
def test_bad_input_is_refused(
    operator: User, published: list[dict[str, Any]], what: str, arguments: Callable[[Book], list[str]], message: str
) -> None:
    book = Book.objects.create(title="a")
    with pytest.raises(CommandError, match="refused: ") as refused:
        run(*arguments(book))
    assert message in str(refused.value)
    assert published == []
    assert not Redispatch.objects.exists()


@pytest.mark.parametrize(
    ("perms", "superuser", "allowed"),
    [
        ((), False, False),  # staff without permission
        (("taskops.view_dispatch", "testapp.view_book"), False, False),  # view-only
        (("taskops.redispatch_dispatch",), False, False),  # re-dispatcher who may not view books
        (("taskops.redispatch_dispatch", "testapp.view_book"), False, True),
        ((), True, True),  # superuser
    ],
)
def test_permission_matrix(
    make_user: Callable[..., User],
    published: list[dict[str, Any]],
    perms: tuple[str, ...],
    superuser: bool,
    allowed: bool,
) -> None:
    make_user("who", *perms, superuser=superuser)
    book = Book.objects.create(title="a")
    if allowed:
        run(*for_books(book, user="who"))
        assert len(published) == 1
    else:
        with pytest.raises(CommandError, match="refused: "):
            run(*for_books(book, user="who"))
        assert published == []


def test_a_refusal_exits_non_zero() -> None:
    test_database = {"TASKOPS_TEST_WORKER_DB": str(connection.settings_dict["NAME"])}
    result = subprocess.run(
        [sys.executable, "manage.py", "taskops_redispatch", "--dispatch", "1", "--reason", "r", "--user", "nobody"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **test_database},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "refused: no user 'nobody'" in result.stderr


def test_objects_in_the_other_arguments_need_view_permission(
    make_user: Callable[..., User], published: list[dict[str, Any]]
) -> None:
    """A reference to another model in --kwargs-json is held to the same rules as the selected objects."""
    make_user("who", "taskops.redispatch_dispatch", "testapp.view_book")
    book = Book.objects.create(title="a")
    country = Country.objects.create(code="FR", name="France")
    reference = '{"note": {"__type__": "taskops.model", "__value__": {"model": "testapp.country", "pk": "FR"}}}'
    with pytest.raises(CommandError, match="kwargs: You may not view countr"):
        run(*for_books(book, user="who", kwargs_json=reference))
    assert published == []
    assert country.pk == "FR"
