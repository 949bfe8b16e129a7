"""“Re-dispatch selected dispatches”: its confirmation page, and the replay it confirms."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.test import Client

from taskops.models import Dispatch, Redispatch, RedispatchTicket, State
from tests.admin.redispatch.conftest import CHANGELIST, IDLE
from tests.factories import make_dispatch
from tests.testapp.models import Book, Tag
from tests.testapp.tasks import add, touch_book

pytestmark = pytest.mark.django_db


def ask(client: Client, url: str, selected: list[int], **more: Any) -> Any:
    return client.post(url, {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: selected, **more})


def confirm(client: Client, url: str, first: Any, **more: Any) -> Any:
    """Post the confirmation page's form back, as its button does."""
    context = first.context
    data = {
        "action": "redispatch_selected",
        helpers.ACTION_CHECKBOX_NAME: context["selected"],
        "select_across": "1" if context["select_across"] else "0",
        "post": "yes",
        "ticket": context["ticket"],
        "queue": IDLE,
        **more,
    }
    return client.post(url, data)


def test_the_confirmation_shows_what_will_happen(operator_client: Client) -> None:
    book = Book.objects.create(title="The book")
    sources = [make_dispatch(book, task_name=touch_book.name) for _ in range(2)]
    sources.append(make_dispatch(task_name=add.name, args=[1, 2]))

    response = ask(operator_client, CHANGELIST, [d.pk for d in sources])

    assert response.status_code == 200
    html = response.content.decode()
    assert "Publish 3 dispatches again" in html
    assert "1 call: the task may not be re-dispatched" in html
    assert html.count('class="taskops-replay-row"') == 3
    assert f"Book #{book.pk}" in html
    assert "The book" in html
    assert response.context["skips"] == [("the task may not be re-dispatched", 1)]
    assert response.context["problems"] == []
    assert RedispatchTicket.objects.filter(purpose="confirmation").count() == 1
    assert not Redispatch.objects.exists()


def test_confirming_replays_and_leads_to_its_page(operator_client: Client, published: list[Any]) -> None:
    sources = [make_dispatch(Book.objects.create(title=f"b{i}"), task_name=touch_book.name) for i in range(2)]
    first = ask(operator_client, CHANGELIST, [d.pk for d in sources])

    done = confirm(operator_client, CHANGELIST, first, reason="The workers were down.")

    redispatch = Redispatch.objects.get()
    assert done.status_code == 302
    assert done["Location"] == f"/admin/taskops/redispatch/{redispatch.pk}/change/"
    assert (redispatch.kind, redispatch.total, redispatch.published) == (Redispatch.Kind.REPLAY, 2, 2)
    assert redispatch.reason == "The workers were down."
    assert sorted(headers["taskops_operator"]["of"] for headers in published) == sorted(d.pk for d in sources)


def test_no_reason_no_replay(operator_client: Client, published: list[Any]) -> None:
    source = make_dispatch(Book.objects.create(title="b"), task_name=touch_book.name)
    first = ask(operator_client, CHANGELIST, [source.pk])

    again = confirm(operator_client, CHANGELIST, first, reason="  ")

    assert again.status_code == 200
    assert again.context["form"].errors["reason"] == ["Say why: the reason is kept in the audit."]
    assert published == []
    assert not Redispatch.objects.exists()


def test_a_confirmation_is_used_once(operator_client: Client, published: list[Any]) -> None:
    source = make_dispatch(Book.objects.create(title="b"), task_name=touch_book.name)
    first = ask(operator_client, CHANGELIST, [source.pk])

    confirm(operator_client, CHANGELIST, first, reason="r")
    second = confirm(operator_client, CHANGELIST, first, reason="r")

    assert second.status_code == 200
    assert "used already" in str(second.context["form"].non_field_errors())
    assert Redispatch.objects.count() == 1
    assert len(published) == 1


def test_select_all_over_a_filtered_changelist_replays_the_filter_not_the_page(
    operator_client: Client, published: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin.site._registry[Dispatch], "list_per_page", 5)
    book = Book.objects.create(title="b")
    matching = [make_dispatch(book, task_name=touch_book.name) for _ in range(12)]
    for _ in range(4):
        make_dispatch(book, task_name=touch_book.name, state=State.FAILURE)
    url = f"{CHANGELIST}?state__exact=SUCCESS"
    page_ids = [d.pk for d in matching[-5:]]  # what the page showed and checked

    first = ask(operator_client, url, page_ids, select_across="1", index="0")

    assert first.context["count"] == 12
    assert first.context["select_across"]
    assert 'name="select_across" value="1"' in first.content.decode()
    confirm(operator_client, url, first, reason="r")
    redispatch = Redispatch.objects.get()
    assert redispatch.total == 12  # the filtered rows, read by the service in chunks: not the page's 5, not all 16
    sources = sorted(int(pk) for pk in redispatch.items.values_list("target", flat=True))
    assert sources == sorted(d.pk for d in matching)
    assert len(published) == 12


def test_what_the_service_refuses_is_shown_and_cannot_be_confirmed(
    operator_client: Client, published: list[Any]
) -> None:
    source = make_dispatch(Tag.objects.create(name="t"), task_name=touch_book.name)  # tags: not viewable

    first = ask(operator_client, CHANGELIST, [source.pk])
    html = first.content.decode()

    assert first.context["problems"] == ["You may not view tags."]
    assert "Yes, re-dispatch" not in html
    confirm(operator_client, CHANGELIST, first, reason="r")
    assert published == []
    assert not Redispatch.objects.exists()


def test_the_confirmation_counts_redacted_kwargs_and_objects_gone(operator_client: Client) -> None:
    kept, gone = Book.objects.create(title="kept"), Book.objects.create(title="gone")
    fine = make_dispatch(kept, task_name=touch_book.name)
    lost = [make_dispatch(gone, task_name=touch_book.name) for _ in range(2)]
    secret = make_dispatch(
        kept, task_name=touch_book.name, kwargs={"note": {"__type__": "taskops.redacted", "__value__": None}}
    )
    gone.delete()

    response = ask(operator_client, CHANGELIST, [fine.pk, secret.pk, *(d.pk for d in lost)])

    html = response.content.decode()
    assert sorted(response.context["skips"]) == [
        ("a keyword argument was redacted (TASKOPS['REDACT_KWARGS'])", 1),
        ("referenced objects no longer exist", 2),
    ]
    assert "2 calls: referenced objects no longer exist" in html
    assert "1 call: a keyword argument was redacted" in html
    assert response.context["problems"] == []
