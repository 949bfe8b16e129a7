"""The Dispatch changelist's rows, and the columns that show their refs.

Rows come with their refs in one extra query per page, whatever the number
of rows and refs (``links.refs_prefetch``). The columns only format what is
loaded: no query per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from taskops.admin.links import Linker, refs_prefetch
from taskops.models import Dispatch, ObjectRef


class DispatchChangeList(ChangeList):
    """The changelist's rows come with their refs: one extra query per page, whatever the rows and refs."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).prefetch_related(refs_prefetch())


def refs_cell(
    dispatch: Dispatch, linker: Linker, shown: int, matches: Callable[[ObjectRef], bool] | None = None
) -> SafeString:
    """The first ``shown`` refs of a row as links, one a line, then "+N more"; refs a search
    ``matches`` come first, marked, so that "+N more" never hides what was searched for."""
    refs = list(dispatch.refs.all())
    if matches is not None:
        refs.sort(key=lambda ref: not matches(ref))
    links = format_html_join(
        mark_safe("<br>"),
        "{}",
        ((linker.ref_link(ref).html(matched=matches is not None and matches(ref)),) for ref in refs[:shown]),
    )
    more = len(refs) - shown
    if more > 0:
        return format_html('{}<br><span class="taskops-quiet">+{} more</span>', links, more)
    return links
