"""The Dispatch changelist's filter for operator dispatches (those a re-dispatch published)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from taskops.models import Dispatch

#: The filter's value for every operator dispatch; a re-dispatch's id narrows it to that one's.
ANY = "any"


class OperationFilter(admin.SimpleListFilter):
    """Operator dispatches: published by a re-dispatch (``Dispatch.operation`` set), or by one of them.

    Uses the foreign key's index; the re-dispatch page links here with its own id.
    """

    title = _("operator dispatches")
    parameter_name = "operation"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(ANY, _("Re-dispatched by an operator"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Dispatch] | None:
        value = self.value()
        if value is None:
            return None
        if value == ANY:
            return queryset.filter(operation__isnull=False)
        # ASCII digits only: "²".isdigit() is true, and int() refuses it.
        is_id = value.isascii() and value.isdigit() and len(value) < 19
        return queryset.filter(operation_id=int(value)) if is_id else queryset.none()
