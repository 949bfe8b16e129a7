"""Users with and without the permissions a re-dispatch needs, and a record of what was published."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.signals import after_task_publish
from django.contrib.auth.models import Permission, User

from taskops.models import Redispatch
from taskops.redispatch import Options, for_objects
from taskops.redispatch.publish import save
from taskops.wire.lanes import lane_of
from tests.celery_app import app
from tests.testapp.models import Book
from tests.testapp.tasks import touch_book

#: A queue no worker reads: what the in-process tests publish stays there (and is purged).
IDLE = "taskops-tests-idle"


def queued(queue: str = IDLE) -> int:
    """Messages waiting in ``queue`` and its lane (where taskops messages go) on the test broker,
    asked through the app's own connection."""
    count = 0
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        for name in (queue, lane_of(queue)):
            with contextlib.suppress(*conn.channel_errors):  # no such queue: nothing was ever sent to it
                count += int(channel.queue_declare(name, passive=True).message_count)
    return count


def purge(queue: str = IDLE) -> None:
    """Empty ``queue`` and its lane."""
    with app.connection_for_write() as conn:
        for name in (queue, lane_of(queue)):
            conn.default_channel.queue_purge(name)  # type: ignore[attr-defined]


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """Headers of every message published during the test."""
    captured: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        captured.append(dict(headers or {}))

    after_task_publish.connect(capture, weak=False, dispatch_uid="tests.redispatch.capture")
    yield captured
    after_task_publish.disconnect(dispatch_uid="tests.redispatch.capture")
    purge(IDLE)


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """A staff user with the given permissions (``"app.codename"``)."""

    def make(name: str, *perms: str, superuser: bool = False) -> User:
        user = User.objects.create_user(name, password="x", is_staff=True, is_superuser=superuser)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return User.objects.get(pk=user.pk)  # permissions are cached per instance

    return make


@pytest.fixture
def operator(make_user: Callable[..., User]) -> User:
    """May re-dispatch, and may view books."""
    return make_user("operator", "taskops.redispatch_dispatch", "testapp.view_book")


def saved_for_books(user: User, count: int, options: Options | None = None) -> Redispatch:
    """A re-dispatch of ``touch_book`` for ``count`` new books, saved and not published
    (``options``: the task's own queue by default, where a test worker runs them)."""
    books = [Book.objects.create(title=f"book {i}") for i in range(count)]
    draft = for_objects(
        user=user,
        task_name=touch_book.name,
        model_label="testapp.book",
        reason="the nightly job failed",
        pks=[b.pk for b in books],
        options=options or Options(),
    )
    return save(draft)
