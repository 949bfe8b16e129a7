"""URLs and page readers shared by the admin tests."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from taskops.models import Drift
from tests.factories import make_dispatch
from tests.testapp.models import Question

CHANGELIST = reverse("admin:taskops_dispatch_changelist")


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def history_url(obj: Any) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return reverse("admin:taskops_dispatch_object_history", args=[content_type.pk, obj.pk])


def result_task_ids(html: str) -> list[str]:
    """Short task ids shown in the changelist's rows, in order."""
    return re.findall(r'<span class="taskops-quiet">([0-9a-f]{8})', html)


def make_rows(count: int, refs_each: int) -> None:
    questions = [Question.objects.create(title=f"Question {i}", body="b") for i in range(refs_each)]
    for _ in range(count):
        make_dispatch(*questions, drift=Drift.CHANGED, changed_fields=["body"])
