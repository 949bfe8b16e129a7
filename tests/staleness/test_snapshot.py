from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo

import pytest
from django.test import override_settings

from taskops.staleness import snapshot
from tests.testapp.models import Question


def test_default_fields_skip_pk_and_auto_now() -> None:
    names = [field.name for field in snapshot.snapshot_fields(Question)]
    assert names == ["title", "body", "author", "summary", "created_at"]


@override_settings(TASKOPS={"SNAPSHOT_FIELDS": {"testapp.Question": ["body", "updated_at"]}})
def test_fields_setting_chooses_exactly() -> None:
    assert [field.name for field in snapshot.snapshot_fields(Question)] == ["body", "updated_at"]


@override_settings(TASKOPS={"SNAPSHOT_EXCLUDE": {"testapp.question": ["summary", "author"]}})
def test_exclude_setting_removes() -> None:
    assert [field.name for field in snapshot.snapshot_fields(Question)] == ["title", "body", "created_at"]


def test_digests_are_short_and_values_not_kept_by_default() -> None:
    question = Question(pk=1, title="T", body="secret")
    taken = snapshot.take(question)
    assert set(taken) == {"title", "body", "author", "summary", "created_at"}
    assert all(len(value) == 8 and int(value, 16) >= 0 for value in taken.values())
    assert "secret" not in str(taken)
    assert snapshot.values(question) == {}


@override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["title"]}})
def test_value_fields_keep_values() -> None:
    assert snapshot.values(Question(pk=1, title="T", body="secret")) == {"title": "T"}


def test_changed_fields() -> None:
    before = snapshot.take(Question(pk=1, title="T", body="a"))
    after = snapshot.take(Question(pk=1, title="T", body="b"))
    assert snapshot.changed_fields(before, after) == ["body"]
    assert snapshot.changed_fields(before, {"title": before["title"]}) == []  # unknown fields do not count


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (decimal.Decimal("1.5"), decimal.Decimal("1.50")),
        (
            dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 1, 13, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        ),
    ],
)
def test_equal_values_from_memory_and_database_digest_alike(left: object, right: object) -> None:
    assert snapshot.digest(left) == snapshot.digest(right)


def test_different_values_digest_differently() -> None:
    assert snapshot.digest("a") != snapshot.digest("b")
    assert snapshot.digest(1) != snapshot.digest("1")


@pytest.mark.django_db
def test_deferred_fields_are_left_out_without_a_query(django_assert_num_queries: object) -> None:
    Question.objects.create(title="T", body="b")
    question = Question.objects.only("title").get()
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert set(snapshot.take(question)) == {"title"}
