"""Every check before anything is published: bad input gets a clear message and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from taskops.models import Dispatch, Redispatch
from taskops.redispatch import Options, Refused, for_objects, replay
from tests.factories import make_dispatch
from tests.testapp.models import Book
from tests.testapp.tasks import add, count_books, pair_books, touch_book

pytestmark = pytest.mark.django_db


def attempt(user: User, **changes: Any) -> Any:
    """``for_objects`` for ``touch_book`` on the test's books, with ``changes``."""
    call: dict[str, Any] = {
        "user": user,
        "task_name": touch_book.name,
        "model_label": "testapp.book",
        "reason": "the import missed them",
        "pks": [book.pk for book in Book.objects.order_by("pk")],
        **changes,
    }
    return for_objects(**call)


#: (what, changes to a good call, field, message part).
BAD_INPUT: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown task", {"task_name": "no.such.task"}, "task", "No task named 'no.such.task'"),
    ("task not allowed", {"task_name": add.name}, "task", "may not be re-dispatched"),
    ("unknown model", {"model_label": "testapp.nothing"}, "model", "No model 'testapp.nothing'"),
    ("not a label", {"model_label": "book"}, "model", "No model 'book'"),
    ("missing ids", {"pks": [999_999, 999_998]}, "objects", "No book with pk 999999, 999998"),
    ("a pk that is not an integer", {"pks": ["abc"]}, "objects", "'abc' is not a valid pk for testapp.book"),
    ("no objects", {"pks": []}, "objects", "Choose at least one object"),
    ("arguments that do not fit", {"kwargs": {"nope": 1}}, "kwargs", "got an unexpected keyword argument 'nope'"),
    ("missing reason", {"reason": "  "}, "reason", "Say why"),
    ("a negative countdown", {"options": Options(countdown=-1)}, "countdown", "between 0 and 604800"),
    ("a priority out of range", {"options": Options(priority=300)}, "priority", "between 0 and 255"),
    ("no such parameter", {"parameter": "shelf"}, "parameter", "no parameter 'shelf'"),
]


@pytest.mark.parametrize(("what", "changes", "field", "message"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(
    operator: User, published: list[Any], what: str, changes: dict[str, Any], field: str, message: str
) -> None:
    Book.objects.create(title="a")
    with pytest.raises(Refused) as refused:
        attempt(operator, **changes)
    assert any(message in text for text in refused.value.problems[field]), refused.value.problems
    assert published == []
    assert not Dispatch.objects.exists()
    assert not Redispatch.objects.exists()


def test_every_problem_is_reported_at_once(operator: User) -> None:
    with pytest.raises(Refused) as refused:
        attempt(operator, pks=["x"], reason="", options=Options(countdown=-5))
    assert set(refused.value.problems) == {"objects", "reason", "countdown"}


@override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.question"]})
def test_a_model_outside_allowed_models_is_refused(operator: User) -> None:
    with pytest.raises(Refused, match="not in TASKOPS\\['ALLOWED_MODELS'\\]"):
        attempt(operator, pks=[Book.objects.create(title="a").pk])


@override_settings(TASKOPS={"REDISPATCH_MAX_CALLS": 2})
def test_over_the_cap_is_refused(operator: User) -> None:
    books = [Book.objects.create(title=str(i)) for i in range(3)]
    with pytest.raises(Refused, match="3 objects, more than the 2"):
        attempt(operator, pks=[book.pk for book in books])


@override_settings(TASKOPS={"REDISPATCH_TASKS": ["tests.testapp.tasks.a*"]})
def test_a_setting_pattern_allows_a_task(operator: User) -> None:
    Book.objects.create(title="a")
    # ``add`` takes no book: allowed now, and refused for what it takes.
    with pytest.raises(Refused) as refused:
        attempt(operator, task_name=add.name)
    assert "task" not in refused.value.problems
    assert "no parameter annotated with Book" in refused.value.problems["parameter"][0]


def test_several_book_parameters_need_one_named(operator: User) -> None:
    Book.objects.create(title="a")
    with pytest.raises(Refused, match="several parameters annotated with Book"):
        attempt(operator, task_name=pair_books.name)
    with pytest.raises(Refused, match="missing a required argument: 'second'"):
        attempt(operator, task_name=pair_books.name, parameter="first")


@pytest.mark.parametrize(
    ("perms", "problem"),
    [
        ((), "permission to re-dispatch"),
        (("testapp.view_book",), "permission to re-dispatch"),
        (("taskops.redispatch_dispatch",), "You may not view books"),
    ],
)
def test_permissions(make_user: Callable[..., User], perms: tuple[str, ...], problem: str) -> None:
    Book.objects.create(title="a")
    with pytest.raises(Refused, match=problem):
        attempt(make_user("someone", *perms))


def test_a_superuser_and_a_redispatcher_who_may_view_pass(make_user: Callable[..., User], operator: User) -> None:
    Book.objects.create(title="a")
    for user in (operator, make_user("root", superuser=True)):
        draft = attempt(user)
        assert (draft.total, draft.task_name) == (1, touch_book.name)


def test_a_list_parameter_gets_one_call_with_every_object(operator: User) -> None:
    books = [Book.objects.create(title=str(i)) for i in range(3)]
    draft = attempt(operator, task_name=count_books.name)
    assert draft.total == 1
    (target,) = draft.targets()
    assert json.loads(target) == [str(book.pk) for book in books]


def test_a_queryset_selection_is_read_in_order(operator: User) -> None:
    books = [Book.objects.create(title=str(i), pages=i) for i in range(5)]
    draft = attempt(operator, pks=None, queryset=Book.objects.filter(pages__gte=2))
    assert draft.total == 3
    assert list(draft.targets()) == [str(book.pk) for book in books[2:]]


def test_replay_needs_view_permission_on_the_referenced_models(make_user: Callable[..., User]) -> None:
    book = Book.objects.create(title="a")
    make_dispatch(book, task_name=touch_book.name)
    blind = make_user("blind", "taskops.redispatch_dispatch")
    with pytest.raises(Refused, match="You may not view books"):
        replay(user=blind, dispatches=Dispatch.objects.all(), reason="again")


def test_replay_counts_what_it_will_skip(operator: User) -> None:
    book = Book.objects.create(title="a")
    make_dispatch(book, task_name=touch_book.name)
    make_dispatch(book, task_name=add.name)
    make_dispatch(book, task_name="gone.task")
    draft = replay(user=operator, dispatches=Dispatch.objects.all(), reason="again")
    assert draft.total == 3
    assert draft.skips == {"task not allowed": 1, "task unknown": 1}


def test_replay_of_redacted_arguments_is_skipped(operator: User) -> None:
    book = Book.objects.create(title="a")
    make_dispatch(book, task_name=touch_book.name, redacted=True)
    make_dispatch(book, task_name=touch_book.name)
    draft = replay(user=operator, dispatches=Dispatch.objects.all(), reason="again")
    assert draft.skips == {"redacted": 1}


@override_settings(TASKOPS={"MAX_REFS": 3})
def test_a_list_call_over_max_refs_is_refused(operator: User, published: list[Any]) -> None:
    for i in range(4):
        Book.objects.create(title=str(i))

    with pytest.raises(Refused) as refused:
        attempt(operator, task_name=count_books.name)

    assert refused.value.problems["objects"] == [
        "One call would carry 4 model references, more than the 3 a message may hold (TASKOPS['MAX_REFS']): "
        "choose fewer objects."
    ]
    assert published == []
    assert not Redispatch.objects.exists()
    Book.objects.filter(pk__gt=Book.objects.order_by("pk")[2].pk).delete()
    assert attempt(operator, task_name=count_books.name).total == 1  # 3: within the limit


@override_settings(TASKOPS={"MAX_REFS": 3})
def test_one_call_per_object_is_not_held_to_max_refs_for_the_selection(operator: User) -> None:
    for i in range(5):
        Book.objects.create(title=str(i))
    assert attempt(operator).total == 5  # five messages of one reference each
