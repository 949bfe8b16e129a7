"""Fixtures of the admin tests."""

from __future__ import annotations

import pytest

from tests.testapp.models import Question


@pytest.fixture
def question() -> Question:
    return Question.objects.create(title="Why does my task see stale data today?", body="It reads too early.")
