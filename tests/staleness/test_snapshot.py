from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
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
    # 16 bytes of URL-safe base64, unpadded: 22 characters.
    assert all(len(base64.urlsafe_b64decode(value + "==")) == 16 and len(value) == 22 for value in taken.values())
    assert "secret" not in str(taken)
    assert snapshot.values(question) == {}


def test_a_boolean_digest_depends_on_the_key_and_is_no_plain_hash() -> None:
    """Unkeyed, the two digests of a boolean give its value away: anyone can hash True and False."""
    with override_settings(SECRET_KEY="one key"):
        under_one = snapshot.digest(True)
        one_id = snapshot.current_key().id
    with override_settings(SECRET_KEY="another key"):
        under_another = snapshot.digest(True)
        another_id = snapshot.current_key().id
    plain = {
        encode(hashlib.blake2b(snapshot.canonical_json(value).encode(), digest_size=size).digest())
        for value in (True, False)
        for size in (4, 16)
    } | {hashlib.sha256(snapshot.canonical_json(True).encode()).hexdigest()}
    assert under_one != under_another
    assert {under_one, under_another}.isdisjoint(plain)
    assert one_id != another_id
    assert len(one_id) == 8


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_a_fallback_key_is_still_known_and_another_is_not() -> None:
    with override_settings(SECRET_KEY="old key"):
        old = snapshot.current_key()
    with override_settings(SECRET_KEY="new key", SECRET_KEY_FALLBACKS=["old key"]):
        assert snapshot.key_for(old.id) == old
        assert snapshot.digest("x", snapshot.key_for(old.id)) == snapshot.digest("x", old)
    with override_settings(SECRET_KEY="new key"):
        assert snapshot.key_for(old.id) is None
        assert snapshot.key_for("") is None  # unkeyed digests of an older taskops


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


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        'quo"te \\ back\nslash',
        "ünïcødé ✓ \U0001f600",
        0,
        -7,
        2**70,
        True,
        False,
        None,
        dt.datetime(2024, 5, 1, 12, 0, 1, 123, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 1, 14, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        dt.datetime(2024, 5, 1, 12, 0),
        1.5,
        decimal.Decimal("1.50"),
        [1, "a", None],
        {"b": 1, "a": [True]},
    ],
)
def test_the_quick_paths_write_what_the_encoder_writes(value: object) -> None:
    """Digests must not change with how the JSON is built (a publisher and a worker of two versions compare them)."""
    assert snapshot.canonical_json(value) == snapshot._CANONICAL_ENCODER.encode(value)
