"""The preview's objects as they are now: whether a row is gone shows only to users who may view its model."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

from taskops.admin.links import Linker
from taskops.admin.redispatch.preview import object_states
from tests.testapp.models import Question
from tests.testapp.tasks import review_question

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("name", "may_know"), [("blind", False), ("operator", True), ("superuser", True)])
def test_a_deleted_row_is_gone_only_to_users_who_may_view_it(
    rf: RequestFactory, role: Callable[[str], User], name: str, may_know: bool
) -> None:
    kept, deleted = (Question.objects.create(title=f"Question {i}", body="b") for i in range(2))
    deleted_pk = str(deleted.pk)
    deleted.delete()
    request = rf.get("/")
    request.user = role(name)

    states = object_states(Question, [str(kept.pk), deleted_pk], review_question.name, Linker(admin.site, request))

    assert [state.gone for state in states] == [False, may_know]
    assert [bool(state.link.text) for state in states] == [may_know, False]
