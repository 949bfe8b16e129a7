"""The Dispatch changelist's rows, and the columns that show their refs.

Rows come with their refs in one extra query per page, whatever the number
of rows and refs (``links.refs_prefetch``). The columns only format what is
loaded: no query per row. Each ref takes one line, its label and ``str()``
cut by an ellipsis (whole in the title), so that a UUID key or a long
``__str__`` never widens the table past the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from taskops.admin.display import ref_line
from taskops.admin.links import Linker, refs_prefetch
from taskops.models import Dispatch, ObjectRef


class DispatchChangeList(ChangeList):
    """The changelist's rows come with their refs: one extra query per page, whatever the rows and refs."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).prefetch_related(refs_prefetch())


def refs_cell(
    dispatch: Dispatch, linker: Linker, shown: int, matches: Callable[[ObjectRef], bool] | None = None
) -> SafeString:
    """The first ``shown`` refs of a row, one a line, then "+N more"; "—" for none. Refs a search
    ``matches`` come first, marked, so that "+N more" never hides what was searched for."""
    refs = list(dispatch.refs.all())
    if not refs:
        return mark_safe('<span class="taskops-quiet">\u2014</span>')
    if matches is not None:
        refs.sort(key=lambda ref: not matches(ref))
    lines = ((ref_line(linker.ref_link(ref), matched=matches is not None and matches(ref)),) for ref in refs[:shown])
    links = format_html_join("", "{}", lines)
    more = len(refs) - shown
    if more > 0:
        return format_html('{}<span class="taskops-quiet">+{} more</span>', links, more)
    return links
