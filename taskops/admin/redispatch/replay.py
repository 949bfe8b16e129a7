"""“Re-dispatch selected dispatches”: the Dispatch changelist's action, an exact replay (``plan.replay``).

In the manner of Django's ``delete_selected``: the first POST shows a
confirmation page (each dispatch of the first page judged against its rows
as they are now, how many calls will be skipped and why, what the service
refuses) that posts the selection back with ``post=yes``, a reason and a
one-time ticket; that POST publishes and leads to the re-dispatch's page.
"Select all N" over a filtered changelist hands the filtered queryset to
the service, which reads its ids in chunks: nothing loads them all at once.

Cost of the confirmation page: the service's checks (counts, one grouped
query for the skips), the first page judged (``preview``), one insert.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from taskops.admin.redispatch import tickets
from taskops.admin.redispatch.base import RedispatchAdminBase
from taskops.admin.redispatch.form import PublishForm
from taskops.admin.redispatch.preview import dispatch_states
from taskops.conf import taskops_settings
from taskops.models import Dispatch, Redispatch
from taskops.redispatch import Refused, in_background, replay, submit
from taskops.redispatch.replays import Skip, replay_skips

#: The reason the confirmation page's check gives the service: the operator's comes with the confirmation.
CHECK_ONLY = "(checked for the confirmation page)"


class ReplayAction(RedispatchAdminBase):
    """The "Re-dispatch selected" action and its confirmation page."""

    #: The confirmation's template; None: the first found of
    #: ``admin/taskops/dispatch/redispatch/replay_confirmation.html``, ``admin/taskops/redispatch/...``, ...
    replay_confirmation_template: str | None = None

    actions = ["redispatch_selected"]

    @admin.action(permissions=["redispatch"], description=gettext_lazy("Re-dispatch selected dispatches"))
    def redispatch_selected(self, request: HttpRequest, queryset: QuerySet[Dispatch]) -> HttpResponse:
        """Confirm, then replay the selected dispatches with their exact stored arguments."""
        form = PublishForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            redispatch = self.replay_confirmed(request, queryset, form)
            if redispatch is not None:
                return HttpResponseRedirect(self.redispatch_page_url(redispatch))
        templates = self.get_template_names(self.replay_confirmation_template, "redispatch/replay_confirmation.html")
        return self.render_page(request, templates, self.get_replay_confirmation_context(request, queryset, form), None)

    def replay_confirmed(
        self, request: HttpRequest, queryset: QuerySet[Dispatch], form: PublishForm
    ) -> Redispatch | None:
        """Use the ticket, ask the service, publish; None (and the form says why) when nothing was published."""
        if tickets.use(request.user, tickets.Purpose.CONFIRMATION, request.POST.get("ticket")) is None:
            form.add_error(
                None,
                _("This confirmation was used already, or it expired: nothing more was published. Check and confirm."),
            )
            return None
        reason = form.cleaned_data["reason"]
        try:
            draft = replay(
                user=request.user,
                dispatches=queryset,
                reason=reason,
                options=form.publish_options(),
                count_skips=False,  # the confirmation page counted them
                may_view=self.linker(request).visibility.may_view,
            )
        except Refused as refused:
            form.refuse(refused)
            return None
        redispatch = submit(draft)
        self.message_submitted(request, redispatch, in_background(draft))
        return redispatch

    def get_replay_confirmation_context(
        self, request: HttpRequest, queryset: QuerySet[Dispatch], form: PublishForm
    ) -> dict[str, Any]:
        """The selection's size, its first page judged now, the skips and refusals, the selection to post back."""
        problems: list[str] = []
        try:
            may_view = self.linker(request).visibility.may_view
            draft = replay(user=request.user, dispatches=queryset, reason=CHECK_ONLY, may_view=may_view)
            count, skips = draft.total, draft.skips
        except Refused as refused:
            problems = [message for messages in refused.problems.values() for message in messages]
            count = queryset.count()
            # Over the cap nothing can be replayed: reading every row for its skips would be wasted.
            skips = replay_skips(queryset) if count <= taskops_settings.REDISPATCH_MAX_CALLS else {}
        rows = dispatch_states(queryset[: self.redispatch_preview_rows], self.linker(request))
        return {
            "title": _("Re-dispatch selected dispatches"),
            "form": form,
            "count": count,
            "rows": rows,
            "more": max(0, count - len(rows)),
            "skips": [(Skip(why).label if why in Skip.values else why, calls) for why, calls in skips.items()],
            "problems": problems,
            "background": count > int(taskops_settings.REDISPATCH_BACKGROUND_OVER),
            "ticket": tickets.issue(request.user, tickets.Purpose.CONFIRMATION),
            "action_name": "redispatch_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across") == "1",
            "changelist_url": request.get_full_path(),
            "media": self.media,
        }
