"""What the re-dispatch pages of ``DispatchAdmin`` share: the permission, where a submit leads, what it says.

Re-dispatching needs ``taskops.redispatch_dispatch`` ("Can re-dispatch
tasks") on top of the view permission every taskops page asks for; the
service checks it again, with view permission on every model involved.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from taskops.admin.columns import DispatchChangelistAdmin
from taskops.admin.pages import AdminPages
from taskops.admin.redispatch.actions import WithoutRunTask
from taskops.models import Redispatch
from taskops.redispatch import policy


class RedispatchAdminBase(WithoutRunTask, AdminPages, DispatchChangelistAdmin):
    """The permission of the re-dispatch pages and actions, and where they lead."""

    #: Objects previewed on the form, and dispatches shown on the replay's confirmation, before "and N more".
    redispatch_preview_rows = 20

    def has_redispatch_permission(self, request: HttpRequest) -> bool:
        """May view dispatches and re-dispatch tasks (the permission of the "Re-dispatch selected" action)."""
        return bool(self.has_view_permission(request) and policy.may_redispatch(request.user))

    def check_redispatch_permission(self, request: HttpRequest) -> None:
        """Every re-dispatch view starts here: the view permission's checks, then re-dispatch, or 403."""
        self.check_view_permission(request)
        if not policy.may_redispatch(request.user):
            raise PermissionDenied

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The changelist, with a link to the form for users who may re-dispatch."""
        link = {"redispatch_url": self.url("redispatch")} if self.has_redispatch_permission(request) else {}
        return super().changelist_view(request, {**link, **(extra_context or {})})

    def redispatch_page_url(self, redispatch: Redispatch) -> str:
        """The re-dispatch's own page (its progress), or the dispatches when its admin is not on this site."""
        try:
            return reverse(f"{self.admin_site.name}:taskops_redispatch_change", args=[redispatch.pk])
        except NoReverseMatch:
            return self.url("changelist")

    def message_submitted(self, request: HttpRequest, redispatch: Redispatch, background: bool) -> None:
        """What a submit says: published and skipped now, or publishing in the background."""
        names: dict[str, Any] = {"id": redispatch.pk, "count": redispatch.total}
        redispatch.refresh_from_db(fields=["outcome", "error", "published", "skipped"])
        if redispatch.outcome == Redispatch.Outcome.FAILED:
            names.update(published=redispatch.published, error=redispatch.error)
            text = _(
                "Re-dispatch #%(id)s stopped: %(error)s. %(published)s of %(count)s published; "
                "resume it from its page when the broker answers again."
            )
            messages.error(request, text % names)
            return
        if background:
            text = ngettext(
                "Re-dispatch #%(id)s: publishing %(count)s call in the background.",
                "Re-dispatch #%(id)s: publishing %(count)s calls in the background.",
                redispatch.total,
            )
        else:
            names.update(published=redispatch.published, skipped=redispatch.skipped)
            text = _("Re-dispatch #%(id)s: %(published)s published, %(skipped)s skipped.")
        messages.success(request, text % names)
