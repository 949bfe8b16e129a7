"""The generic re-dispatch form on ``DispatchAdmin`` (``admin:taskops_dispatch_redispatch``) and its pickers' search.

One view, three steps. A GET (or a POST of the "Choose" button) shows the
form for the chosen task; a POST checks it (``RedispatchForm``, which asks
the service) and shows the preview, as the ``preview`` partial when htmx
asks, the inputs' errors swapped in beside them; the preview's button posts
a one-time ticket (``tickets``) that holds what was previewed, and the
publish uses it up: a second submit publishes nothing. Then the
re-dispatch's own page (its progress).

Cost of a preview: the form's checks (the service's: a count and existence
queries), the preview's queries (``preview``), one insert for the ticket.
"""

from __future__ import annotations

from typing import Any

import attrs
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, QueryDict
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from taskops.admin.arguments import ArgumentPrinter
from taskops.admin.redispatch import tickets
from taskops.admin.redispatch.autocomplete import ObjectAutocomplete
from taskops.admin.redispatch.base import RedispatchAdminBase
from taskops.admin.redispatch.fields import FieldFactory
from taskops.admin.redispatch.form import RedispatchForm
from taskops.admin.redispatch.preview import ObjectState, object_states
from taskops.redispatch import Draft, in_background, submit

#: What a confirmation ticket keeps of the previewed form: everything posted but these.
NOT_KEPT = frozenset({"csrfmiddlewaretoken", "confirm", "_choose", "_preview"})


@attrs.frozen
class Preview:
    """A checked re-dispatch as the operator confirms it."""

    draft: Draft
    #: Goes to the background fan-out (a progress bar follows).
    background: bool
    #: How many objects, and the first page of them as they are now.
    count: int
    objects: list[ObjectState]
    #: The other arguments, pretty-printed (objects among them linked as the user may see them).
    kwargs_html: SafeString | None
    #: The one-time ticket the confirmation posts.
    ticket: str

    @property
    def more(self) -> int:
        return self.count - len(self.objects)


def kept_form_data(data: QueryDict) -> dict[str, list[str]]:
    return {key: data.getlist(key) for key in data if key not in NOT_KEPT}


def form_data(kept: dict[str, list[str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, values in kept.items():
        data.setlist(key, [str(value) for value in values])
    return data


class RedispatchFormViews(RedispatchAdminBase):
    """The generic form, its preview and confirmation, and the search of its object pickers."""

    #: The form's template; None: the first found of ``admin/taskops/dispatch/redispatch/form.html``,
    #: ``admin/taskops/redispatch/form.html``, ``admin/redispatch/form.html``.
    redispatch_template: str | None = None

    def get_urls(self) -> list[URLPattern]:
        """The form and its pickers' search, before the admin's own URLs."""
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("redispatch/", wrap(self.redispatch_view), name="{}_{}_redispatch".format(*info)),
            path(
                "redispatch/autocomplete/",
                wrap(self.redispatch_autocomplete_view),
                name="{}_{}_redispatch_autocomplete".format(*info),
            ),
            *super().get_urls(),
        ]

    def redispatch_autocomplete_view(self, request: HttpRequest) -> HttpResponseBase:
        """Search one input's model for the form (``ObjectAutocomplete``), for users who may re-dispatch."""
        self.check_redispatch_permission(request)
        return ObjectAutocomplete.as_view(admin_site=self.admin_site)(request)

    def redispatch_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The form; posted, its preview (a partial for htmx); with a ticket, the publish."""
        self.check_redispatch_permission(request)
        if request.method == "POST" and "confirm" in request.POST:
            return self.confirm_redispatch(request, extra_context)
        checking = request.method == "POST" and "_choose" not in request.POST
        source = request.POST if request.method == "POST" else request.GET
        selection = self.redispatch_selection(request, source.get("selection"))
        if checking:
            form = self.get_redispatch_form(request, selection, data=request.POST)
        else:
            form = self.get_redispatch_form(request, selection, initial=initial_from(source))
        preview = self.get_redispatch_preview(request, form) if checking and form.is_valid() else None
        templates = self.get_template_names(self.redispatch_template, "redispatch/form.html")
        if checking and getattr(request, "htmx", False):
            templates = [f"{name}#preview" for name in templates]
        return self.render_page(request, templates, self.get_redispatch_context(request, form, preview), extra_context)

    def redispatch_selection(self, request: HttpRequest, token: str | None) -> tickets.Selection | None:
        """The selection a changelist action kept for this user; a token that finds none says so."""
        selection = tickets.find_selection(request.user, token)
        if token and selection is None:
            messages.error(request, _("The selection has expired, or is not yours: choose the objects again."))
        return selection

    def get_redispatch_form(
        self,
        request: HttpRequest,
        selection: tickets.Selection | None,
        *,
        data: QueryDict | None = None,
        initial: dict[str, Any] | None = None,
    ) -> RedispatchForm:
        """The form for the task the request chose; its pickers search through ``redispatch_autocomplete_view``."""
        task = (data if data is not None else initial or {}).get("task") or ""
        search = f"{self.url('redispatch_autocomplete')}?{QueryDict.fromkeys(['task'], task).urlencode()}"
        factory = FieldFactory(self.admin_site, request, self.linker(request).visibility, search)
        return RedispatchForm(data, user=request.user, factory=factory, selection=selection, initial=initial)

    def get_redispatch_preview(self, request: HttpRequest, form: RedispatchForm) -> Preview | None:
        """The checked re-dispatch, its first objects as they are now, and a ticket that confirms it."""
        draft = form.draft
        if draft is None or form.objects_model is None:
            return None
        linker = self.linker(request)
        task_name = draft.task_name
        page = form.pks[: self.redispatch_preview_rows]
        ticket = tickets.issue(request.user, tickets.Purpose.CONFIRMATION, data={"form": kept_form_data(request.POST)})
        return Preview(
            draft=draft,
            background=in_background(draft),
            count=len(form.pks),
            objects=object_states(form.objects_model, page, task_name, linker),
            kwargs_html=ArgumentPrinter(linker).render_stored(draft.plan.get("kwargs") or "{}")
            if form.kwargs
            else None,
            ticket=ticket,
        )

    def get_redispatch_context(
        self, request: HttpRequest, form: RedispatchForm, preview: Preview | None
    ) -> dict[str, Any]:
        """The form, its preview, where they post."""
        return {
            "title": _("Re-dispatch a task"),
            "form": form,
            "groups": form.groups(),
            "media": self.media + form.media,
            "selection": form.selection,
            "preview": preview,
            "form_url": self.url("redispatch"),
            "changelist_url": self.url("changelist"),
            "audit_url": self.audit_url(),
        }

    def audit_url(self) -> str:
        """The re-dispatches' changelist (the audit), when its admin is on this admin site."""
        try:
            return reverse(f"{self.admin_site.name}:taskops_redispatch_changelist")
        except NoReverseMatch:
            return ""

    def confirm_redispatch(self, request: HttpRequest, extra_context: dict[str, Any] | None) -> HttpResponse:
        """Use the ticket, check what it holds again, publish; a used or unknown ticket publishes nothing."""
        ticket = tickets.use(request.user, tickets.Purpose.CONFIRMATION, request.POST.get("confirm"))
        if ticket is None:
            messages.error(
                request,
                _(
                    "This re-dispatch was confirmed already, or its preview expired: nothing more was published. "
                    "Check it and preview it again."
                ),
            )
            return HttpResponseRedirect(self.url("redispatch"))
        data = form_data(ticket.data.get("form", {}))
        selection = self.redispatch_selection(request, data.get("selection"))
        form = self.get_redispatch_form(request, selection, data=data)
        if not form.is_valid() or form.draft is None:
            messages.error(request, _("Something changed since the preview: nothing was published. Check the form."))
            templates = self.get_template_names(self.redispatch_template, "redispatch/form.html")
            return self.render_page(request, templates, self.get_redispatch_context(request, form, None), extra_context)
        redispatch = submit(form.draft)
        if selection is not None:
            tickets.use(request.user, tickets.Purpose.SELECTION, selection.token)  # done with it
        self.message_submitted(request, redispatch, in_background(form.draft))
        return HttpResponseRedirect(self.redispatch_page_url(redispatch))


def initial_from(source: QueryDict) -> dict[str, Any]:
    """What a GET (``?task=...``) or the "Choose" button chose, as the form's initial values."""
    return {key: values if len(values) > 1 else values[0] for key, values in source.lists() if key not in NOT_KEPT}
