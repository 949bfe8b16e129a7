"""The ``taskops`` header: one class writes and reads it; reading never raises."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import override_settings

from taskops.wire import HEADER, HeaderRef, TaskopsHeader

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_round_trip_through_the_message() -> None:
    header = TaskopsHeader(AT, True, (HeaderRef("testapp.book", 7, "args[0]", {"title": "ab12"}),))
    message = header.to_message()
    assert message == {
        "v": 1,
        "enqueued_at": AT.isoformat(),
        "tx": True,
        "refs": [["testapp.book", 7, "args[0]", {"title": "ab12"}]],
    }
    assert TaskopsHeader.from_message(message) == header


@pytest.mark.parametrize(
    "where",
    [
        lambda message: SimpleNamespace(taskops=message),  # a worker's request: the header as an attribute
        lambda message: SimpleNamespace(headers={HEADER: message}),  # a request of protocol 1
        lambda message: {HEADER: message},  # message headers
    ],
)
def test_read_from_where_celery_puts_it(where: Any) -> None:
    header = TaskopsHeader(AT, False, ())
    assert TaskopsHeader.from_request(where(header.to_message())) == header


def test_no_header_is_none() -> None:
    assert TaskopsHeader.from_request(SimpleNamespace(headers={})) is None


@pytest.mark.parametrize("version", [2, 99, "1", None])
def test_another_version_is_a_problem_and_nothing_of_it_is_used(version: Any) -> None:
    message = {**TaskopsHeader(AT, True, (HeaderRef("testapp.book", 1, "args[0]", {}),)).to_message(), "v": version}
    header = TaskopsHeader.from_message(message)
    assert header.refs == ()
    assert header.enqueued_at is None
    assert not header.in_transaction
    assert len(header.problems) == 1
    assert "is not understood" in header.problems[0]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("enqueued_at", "x", "enqueued_at 'x' is not a time"),
        ("enqueued_at", 12, "enqueued_at 12 is not a time"),
        ("tx", "yes", "tx 'yes' is not a boolean"),
        ("refs", {"a": 1}, "refs {'a': 1} is not a list"),
        ("refs", [1], "refs[0] 1 is not [label, pk, argument, digests]"),
        ("refs", [["nodot", 1, "args[0]", {}]], "refs[0]"),
        ("refs", [["testapp.book", 1.5, "args[0]", {}]], "refs[0]"),
        ("refs", [["testapp.book", True, "args[0]", {}]], "refs[0]"),
        ("refs", [["testapp.book", "a\x00", "args[0]", {}]], "refs[0]"),
        ("refs", [["testapp.book", 1, 5, {}]], "refs[0]"),
        ("refs", [["testapp.book", 1, "args[0]", []]], "refs[0]"),
        ("refs", [["nope.gone", 1, "args[0]", {}]], "refs[0]: model 'nope.gone' is not installed"),
    ],
)
def test_a_malformed_field_is_a_problem_not_an_exception(field: str, value: Any, problem: str) -> None:
    message = TaskopsHeader(AT, False, ()).to_message()
    header = TaskopsHeader.from_message({**message, field: value})
    assert len(header.problems) == 1
    assert header.problems[0].startswith(problem)


def test_good_refs_are_kept_beside_bad_ones_and_long_paths_are_cut() -> None:
    good = ["testapp.book", 1, "args[0]" + "x" * 300, {"title": "ab", 3: "dropped"}]
    header = TaskopsHeader.from_message({"v": 1, "refs": [good, "bad"]})
    assert header.refs == (HeaderRef("testapp.book", 1, ("args[0]" + "x" * 300)[:255], {"title": "ab"}),)
    assert header.problems == ("refs[1] 'bad' is not [label, pk, argument, digests]",)


@override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.question"]})
def test_a_ref_to_a_model_that_may_not_travel_is_dropped_as_the_body_would_be() -> None:
    refs = [["testapp.book", 1, "args[0]", {}], ["testapp.question", 2, "args[1]", {}]]

    header = TaskopsHeader.from_message({"v": 1, "refs": refs})

    assert header.refs == (HeaderRef("testapp.question", 2, "args[1]", {}),)
    assert header.problems == ("refs[0]: model 'testapp.book' is not allowed (TASKOPS['ALLOWED_MODELS'])",)


def test_a_header_that_is_not_an_object() -> None:
    header = TaskopsHeader.from_message([1, 2])
    assert header.problems == ("taskops header is a list, not an object",)
