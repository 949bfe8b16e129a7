"""Selections and confirmations kept on the server: one user's, for a while, and a confirmation used once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from taskops.admin.redispatch import tickets
from taskops.models import RedispatchTicket
from tests.testapp.models import Question

Purpose = tickets.Purpose


@pytest.mark.django_db
def test_a_ticket_is_its_users_for_its_purpose_and_its_lifetime(make_user: Callable[..., User]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token = tickets.issue(alice, Purpose.CONFIRMATION, data={"form": {"task": ["x"]}})

    assert tickets.find(bob, Purpose.CONFIRMATION, token) is None
    assert tickets.find(alice, Purpose.SELECTION, token) is None
    assert tickets.find(alice, Purpose.CONFIRMATION, token).data == {"form": {"task": ["x"]}}  # type: ignore[union-attr]
    RedispatchTicket.objects.filter(token=token).update(created_at=timezone.now() - tickets.LIFETIME - dt.timedelta(1))
    assert tickets.find(alice, Purpose.CONFIRMATION, token) is None
    tickets.issue(alice, Purpose.SELECTION)  # issuing clears the user's expired tickets
    assert not RedispatchTicket.objects.filter(token=token).exists()


@pytest.mark.django_db
def test_a_selection_keeps_pks_in_order(make_user: Callable[..., User]) -> None:
    user = make_user("alice")
    questions = [Question.objects.create(title=str(i), body="b") for i in range(3)]

    token = tickets.keep_selection(user, Question.objects.filter(pk__in=[questions[2].pk, questions[0].pk]))

    selection = tickets.find_selection(user, token)
    assert selection is not None
    assert (selection.model, selection.pks, selection.count) == (
        Question,
        [str(questions[0].pk), str(questions[2].pk)],
        2,
    )
    assert selection.label == "questions"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uses_of_one_confirmation_one_wins(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests find the ticket before either deletes it (the worst interleaving): one use only."""
    user = make_user("alice")
    token = tickets.issue(user, Purpose.CONFIRMATION)
    both_found = threading.Barrier(2, timeout=10)
    real_find = tickets.find

    def find_then_wait(*args: Any) -> Any:
        found = real_find(*args)
        both_found.wait()
        return found

    monkeypatch.setattr(tickets, "find", find_then_wait)
    results: list[Any] = []

    def use() -> None:
        try:
            results.append(tickets.use(user, Purpose.CONFIRMATION, token))
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 2
    assert sum(result is not None for result in results) == 1
    assert not RedispatchTicket.objects.exists()
