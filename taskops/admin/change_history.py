"""Django's own "History" page of a taskops object, with each entry's user as ``Visibility`` allows.

Django's page prints every ``LogEntry``'s username and full name to whoever
may view the object. taskops shows users like any other model's rows: by
name to those who may view users, else as "User #N". The page stays
Django's (its view, its pagination, its ``object_history_template``);
taskops' template (``admin/taskops/object_history.html``, Django's own
fallback for its models) prints ``history_rows`` instead of the users.
One query more than Django's: none (the users come joined).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

from taskops.admin.links import Linker

if TYPE_CHECKING:
    HistoryBase = admin.ModelAdmin[Any]
else:
    HistoryBase = object


def actor_html(user: Any, linker: Linker) -> SafeString:
    """Who made a change: their name, linked, to users who may view users; else "User #N"."""
    if user is None:
        return conditional_escape("—")
    return linker.instance_link(user).name_html()


class VisibleChangeHistory(HistoryBase):
    """A ``ModelAdmin`` mixin: its "History" page names users only to those who may view them."""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response: HttpResponse = super().history_view(request, object_id, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            linker = Linker(self.admin_site, request)
            actions = response.context_data.get("action_list") or []
            response.context_data["history_rows"] = [(action, actor_html(action.user, linker)) for action in actions]
        return response
