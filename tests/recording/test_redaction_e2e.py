"""End to end with the real worker: a secret the publisher hid is stored and shown nowhere."""

from __future__ import annotations

import json
from typing import Any, cast

from django.test import Client
from django.urls import reverse
from django_celery_results.models import TaskResult

from taskops.models import Dispatch, ObjectRef, State
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.testapp.models import Question
from tests.testapp.tasks import notify_followers

TOKEN = "API_TOKEN=sk-live-4f9a8b7c6d5e"


def test_a_redacted_secret_is_in_no_row_and_on_no_page(worker: WorkerProcess, admin_client: Client) -> None:
    question = Question.objects.create(title="Q", body="b")

    result = cast(Any, notify_followers).apply_async((question,), {"message": TOKEN}, kwargsrepr="{redacted}")

    assert result.get(timeout=60) == 0
    row = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.SUCCESS).first(), what="the end")
    dispatch_rows = json.dumps(list(Dispatch.objects.filter(pk=row.pk).values()), default=str)
    ref_rows = json.dumps(list(ObjectRef.objects.filter(dispatch=row).values()), default=str)
    results = json.dumps(list(TaskResult.objects.filter(task_id=result.id).values()), default=str)
    page = admin_client.get(reverse("admin:taskops_dispatch_change", args=[row.pk])).content.decode()

    assert row.redacted
    assert row.refs.get().object_pk == str(question.pk)  # kept by pk, for history and drift
    for text in (dispatch_rows, ref_rows, results, page):
        assert "sk-live" not in text
    assert "The arguments were redacted by the publisher" in page
    assert "{redacted}" in page
