"""The audit in the admin: re-dispatches listed and followed, a stopped one resumed, operator dispatches found."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops import recording
from taskops.admin.redispatch.progress import RECORDING_GRACE
from taskops.models import Dispatch, Redispatch, RedispatchItem
from taskops.redispatch import Options, for_objects, replay, submit
from tests.admin.redispatch.conftest import CHANGELIST, HTMX, IDLE
from tests.factories import make_dispatch
from tests.testapp.models import Book
from tests.testapp.tasks import count_books, touch_book

pytestmark = pytest.mark.django_db(transaction=True)  # the recorder writes the new dispatches from its thread

AUDIT = reverse("admin:taskops_redispatch_changelist")


def page_of(redispatch: Redispatch) -> str:
    return reverse("admin:taskops_redispatch_change", args=[redispatch.pk])


@pytest.fixture
def books() -> list[Book]:
    return [Book.objects.create(title=f"Book {i}") for i in range(3)]


def books_draft(make_user: Callable[..., User], task_name: str, books: list[Book], **more: Any) -> Any:
    """A checked draft of ``task_name`` for the books, by a user who may, to the idle queue."""
    owner = make_user("owner", "taskops.redispatch_dispatch", "testapp.view_book")
    return for_objects(
        user=owner,
        task_name=task_name,
        model_label="testapp.book",
        pks=[b.pk for b in books],
        options=Options(queue=IDLE),
        **more,
    )


@pytest.fixture
def done(make_user: Callable[..., User], books: list[Book], published: list[Any]) -> Redispatch:
    """Three calls of touch_book, one skipped (its book deleted before it was published)."""
    draft = books_draft(make_user, touch_book.name, books, kwargs={"note": "again"}, reason="Lost in the outage.")
    Book.objects.filter(pk=books[2].pk).delete()
    redispatch = submit(draft)
    assert recording.flush()
    return redispatch


def test_the_list_says_when_who_what_how_many_and_how_it_ended(operator_client: Client, done: Redispatch) -> None:
    response = operator_client.get(AUDIT)

    html = response.content.decode()
    assert response.status_code == 200
    assert "tests.testapp.tasks.touch_book" in html
    assert "Task for objects" in html
    assert "2 / 1 / 3" in html  # published / skipped / calls
    assert "Done, some skipped" in html
    assert f"User #{done.user_id}" in html
    assert ">owner<" not in html


def test_its_page_has_the_summary_its_calls_and_their_new_dispatches(
    operator_client: Client, done: Redispatch, books: list[Book]
) -> None:
    response = operator_client.get(page_of(done))

    html = response.content.decode()
    assert "Lost in the outage." in html
    assert 'data-percent="100"' in html
    assert 'data-settled="true"' in html
    assert "hx-trigger" not in html  # settled: no polling
    assert response.context["skipped_by_note"] == {f"objects gone: testapp.book:{books[2].pk}": 1}
    rows = response.context["rows"]
    assert [row.item.state for row in rows] == ["published", "published", "skipped"]
    new = Dispatch.objects.filter(operation=done).order_by("pk")
    assert sorted(row.dispatch.pk for row in rows if row.dispatch) == [d.pk for d in new]
    assert all(f'href="/admin/taskops/dispatch/{d.pk}/change/"' in html for d in new)
    assert f"Book #{books[0].pk}" in html
    assert 'value="Resume"' not in html


def test_the_poll_gets_the_partial_and_stops_when_settled(operator_client: Client, done: Redispatch) -> None:
    Redispatch.objects.filter(pk=done.pk).update(outcome=Redispatch.Outcome.RUNNING, published=1, skipped=0)

    running = operator_client.get(page_of(done), headers=HTMX)
    Redispatch.objects.filter(pk=done.pk).update(outcome=Redispatch.Outcome.DONE, published=3)
    settled = operator_client.get(page_of(done), headers=HTMX)

    assert running.status_code == 200
    html = running.content.decode()
    assert html.lstrip().startswith('<div id="taskops-progress"')
    assert "<html" not in html
    assert 'hx-trigger="every 1s"' in html
    assert 'data-percent="33"' in html
    assert settled.status_code == 286  # django-htmx's HttpResponseStopPolling
    assert 'data-percent="100"' in settled.content.decode()
    assert "hx-trigger" not in settled.content.decode()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The re-dispatches whose fan-out was started (recorded, not sent: no worker reads it here)."""
    started: list[int] = []

    def start_fan_out(redispatch: Redispatch) -> bool:
        started.append(redispatch.pk)
        return True

    monkeypatch.setattr("taskops.redispatch.start_fan_out", start_fan_out)
    return started


def test_a_stopped_one_is_resumed_once(operator_client: Client, done: Redispatch, started: list[int]) -> None:
    Redispatch.objects.filter(pk=done.pk).update(outcome=Redispatch.Outcome.FAILED, error="OperationalError: gone")
    resume = reverse("admin:taskops_redispatch_resume", args=[done.pk])

    html = operator_client.get(page_of(done)).content.decode()
    first = operator_client.post(resume)
    second = operator_client.post(resume)  # a double click

    assert "OperationalError: gone" in html
    assert f'action="{resume}"' in html
    assert first.status_code == 302
    assert first["Location"] == page_of(done)
    assert started == [done.pk]
    assert Redispatch.objects.get(pk=done.pk).outcome == Redispatch.Outcome.QUEUED
    assert any("is not stopped or stalled" in str(m) for m in second.wsgi_request._messages)  # type: ignore[attr-defined]
    assert LogEntry.objects.filter(object_id=str(done.pk), action_flag=CHANGE).count() == 1
    assert operator_client.get(resume).status_code == 405


def test_a_stalled_one_stops_polling_and_offers_resume(
    operator_client: Client, done: Redispatch, started: list[int]
) -> None:
    """Publishing, but no heartbeat for REDISPATCH_STALLED_AFTER (its fan-out died with its worker)."""
    resume = reverse("admin:taskops_redispatch_resume", args=[done.pk])
    Redispatch.objects.filter(pk=done.pk).update(outcome=Redispatch.Outcome.RUNNING, heartbeat_at=timezone.now())

    alive = operator_client.get(page_of(done), headers=HTMX)
    long_ago = timezone.now() - dt.timedelta(seconds=301)  # REDISPATCH_STALLED_AFTER: 300 s by default
    Redispatch.objects.filter(pk=done.pk).update(heartbeat_at=long_ago)
    stalled = operator_client.get(page_of(done), headers=HTMX)
    resumed = operator_client.post(resume)

    assert alive.status_code == 200  # still polled, no resume
    assert f'action="{resume}"' not in alive.content.decode()
    assert stalled.status_code == 286  # nothing moves until someone resumes it: the poll stops
    assert f'action="{resume}"' in stalled.content.decode()
    assert "Stalled: no progress since" in stalled.content.decode()
    assert resumed.status_code == 302
    assert started == [done.pk]
    assert Redispatch.objects.get(pk=done.pk).outcome == Redispatch.Outcome.QUEUED


def test_one_call_with_a_list_names_its_objects(
    operator_client: Client, make_user: Callable[..., User], books: list[Book], published: list[Any]
) -> None:
    redispatch = submit(books_draft(make_user, count_books.name, books, reason="r"))

    html = operator_client.get(page_of(redispatch)).content.decode()

    item = RedispatchItem.objects.get(redispatch=redispatch)
    assert json.loads(item.target) == [str(b.pk) for b in books]
    assert all(f"Book #{b.pk}" in html for b in books)
    assert "one call with the list" in html


def test_the_operator_filter_and_the_dispatch_detail(
    operator_client: Client, done: Redispatch, make_user: Callable[..., User], books: list[Book]
) -> None:
    plain = make_dispatch(books[0], task_name=touch_book.name)
    again = submit(
        replay(user=done.user, dispatches=Dispatch.objects.filter(pk=plain.pk), reason="r", options=Options(queue=IDLE))
    )
    assert recording.flush()

    operators = operator_client.get(CHANGELIST, {"operation": "any"}).context["cl"].result_list
    one = operator_client.get(CHANGELIST, {"operation": str(again.pk)}).context["cl"].result_list
    nothing = operator_client.get(CHANGELIST, {"operation": "x"}).context["cl"].result_list
    replayed = Dispatch.objects.get(operation=again)
    detail = operator_client.get(reverse("admin:taskops_dispatch_change", args=[replayed.pk])).content.decode()

    assert {d.operation_id for d in operators} == {done.pk, again.pk}
    assert plain not in operators
    assert [d.pk for d in one] == [replayed.pk]
    assert list(nothing) == []
    assert f'<a href="{page_of(again)}">{again}</a>' in detail  # operator action, linked
    assert f'href="/admin/taskops/dispatch/{plain.pk}/change/"' in detail  # re-dispatch of, linked
    assert f"User #{done.user_id}" in detail  # dispatched by, as the viewer may see it


def test_a_finished_one_waits_a_little_for_its_new_dispatches_to_be_recorded(
    operator_client: Client, done: Redispatch
) -> None:
    Dispatch.objects.filter(operation=done).delete()  # as if the recorder had not written them yet

    waiting = operator_client.get(page_of(done), headers=HTMX)
    Redispatch.objects.filter(pk=done.pk).update(finished_at=timezone.now() - RECORDING_GRACE - dt.timedelta(1))
    given_up = operator_client.get(page_of(done), headers=HTMX)

    assert waiting.status_code == 200
    assert "being recorded" in waiting.content.decode()
    assert 'hx-trigger="every 1s"' in waiting.content.decode()
    assert given_up.status_code == 286
