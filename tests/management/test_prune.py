from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from taskops.management.commands.taskops_prune import Command
from taskops.models import Dispatch, ObjectRef, State
from tests.testapp.models import Book


def make(task_id: str, days_ago: float, state: str) -> Dispatch:
    row = Dispatch.objects.create(
        task_id=task_id, task_name="t", state=state, enqueued_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    ObjectRef.objects.create(dispatch=row, content_type=ContentType.objects.get_for_model(Book), object_pk="1")
    return row


@pytest.fixture
def rows(db: None) -> None:
    for i in range(5):
        make(f"old-{i}", 40, State.SUCCESS)
    make("old-running", 40, State.STARTED)
    make("recent", 1, State.SUCCESS)


def test_dry_run_says_how_many_and_deletes_nothing(rows: None) -> None:
    out = StringIO()
    call_command("taskops_prune", "--older-than", "30", "--dry-run", stdout=out)
    assert "Would delete 5 dispatch(es)" in out.getvalue()
    assert Dispatch.objects.count() == 7


@override_settings(TASKOPS={"PRUNE_BATCH_SIZE": 2})
def test_deletes_finished_old_rows_in_batches(rows: None) -> None:
    out = StringIO()
    call_command("taskops_prune", "--older-than", "30", stdout=out)
    assert "Deleted 5 dispatch(es)" in out.getvalue()
    assert sorted(Dispatch.objects.values_list("task_id", flat=True)) == ["old-running", "recent"]
    assert ObjectRef.objects.count() == 2


@pytest.mark.parametrize("days", ["0", "-1", "soon"])
def test_older_than_must_be_a_positive_number_of_days(rows: None, days: str) -> None:
    with pytest.raises(CommandError, match=r"argument --older-than: (must be 1 or more days|expected a whole number)"):
        call_command("taskops_prune", "--older-than", days)
    assert Dispatch.objects.count() == 7  # nothing deleted


def test_every_option_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        call_command("taskops_prune", "--help")
    text = " ".join(capsys.readouterr().out.split())

    assert "Delete finished dispatches enqueued more than DAYS days ago (1 or more)." in text
    assert "Only say how many would go; delete nothing." in text
    parser = Command().create_parser("manage.py", "taskops_prune")
    assert [action.dest for action in parser._actions if not action.help] == []
