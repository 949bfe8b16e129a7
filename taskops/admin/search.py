"""The changelist's search: a task id, a task name, or an object.

Every clause is served by an index: the task id (unique), the task name,
and ``ObjectRef``'s ``(content_type, object_pk)``; task names are matched
against Celery's registry in Python, not with ``LIKE`` over the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from taskops.admin.celery_names import registered_task_names
from taskops.models import Dispatch, ObjectRef

#: ``app_label.model:pk``, e.g. ``demo.question:42``.
OBJECT_TERM = re.compile(r"^(?P<app>\w+)\.(?P<model>\w+):(?P<pk>\S+)$")


def search_dispatches(queryset: QuerySet[Dispatch], term: str, models: Iterable[type[Any]] = ()) -> QuerySet[Dispatch]:
    """Dispatches matching a search term, each clause on an index.

    ``demo.question:42`` finds dispatches that referenced that object; any
    other single word matches a task id exactly, a task name (registered
    names containing it, or the exact name), or an object pk of one of
    ``models`` (the models the admin site shows).
    """
    term = term.strip()
    if not term:
        return queryset
    match = OBJECT_TERM.match(term)
    if match:
        try:
            content_type = ContentType.objects.get_by_natural_key(match["app"].lower(), match["model"].lower())
        except ContentType.DoesNotExist:
            return queryset.none()
        refs = ObjectRef.objects.filter(content_type=content_type, object_pk=match["pk"])
        return queryset.filter(pk__in=refs.values("dispatch_id"))
    lowered = term.lower()
    task_names = [name for name in registered_task_names() if lowered in name.lower()]
    condition = Q(task_id=term) | Q(task_name=term) | Q(task_name__in=task_names)
    if not any(char.isspace() for char in term):
        content_types = ContentType.objects.get_for_models(*models).values() if models else []
        refs = ObjectRef.objects.filter(content_type__in=[ct.pk for ct in content_types], object_pk=term)
        condition |= Q(pk__in=refs.values("dispatch_id"))
    return queryset.filter(condition)
