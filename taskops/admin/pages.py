"""What every taskops page shares, whichever ``ModelAdmin`` serves it: the admin's own pattern.

A view starts with an explicit permission check (``check_view_permission``);
its context is ``admin_site.each_context``, then the page's own, then
``extra_context`` (merged last, so its keys win: ``render_page``); its
template is a class attribute or, when that is None, the first found of
``admin/<app>/<model>/<name>``, ``admin/<app>/<name>``, ``admin/<name>``
(``get_template_names``), so a project overrides taskops' pages the way it
overrides Django's. No query of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

from taskops.admin.params import check_parameters

if TYPE_CHECKING:
    PagesBase = admin.ModelAdmin[Any]
else:
    PagesBase = admin.ModelAdmin


class AdminPages(PagesBase):
    """Permission check, URLs, template names and context of a taskops ``ModelAdmin``'s own pages."""

    def check_view_permission(self, request: HttpRequest) -> None:
        """Every taskops view starts here: the model's view permission (or change) or 403; then, as Django's
        views do, the request says which admin site it is on (``{% url %}`` reverses within it); then a query
        string or posted form no text column can hold is a 400."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        check_parameters(request)

    def url(self, name: str, *args: Any) -> str:
        """The URL of one of this admin's views (``changelist``, ``dashboard``, ...) on this admin site."""
        info = self.opts.app_label, self.opts.model_name
        return reverse("{}:{}_{}_{}".format(self.admin_site.name, *info, name), args=args)

    def get_template_names(self, template: str | None, name: str) -> list[str]:
        """``template`` when set, else Django's fallback list for ``name``: this model's, this app's, the admin's."""
        if template:
            return [template]
        app_label, model_name = self.opts.app_label, self.opts.model_name
        return [f"admin/{app_label}/{model_name}/{name}", f"admin/{app_label}/{name}", f"admin/{name}"]

    def render_page(
        self,
        request: HttpRequest,
        templates: list[str],
        context: dict[str, Any],
        extra_context: dict[str, Any] | None,
    ) -> TemplateResponse:
        """One of this admin's own pages: the site's context, the page's, then ``extra_context``."""
        context = {**self.admin_site.each_context(request), "opts": self.opts, **context, **(extra_context or {})}
        return TemplateResponse(request, templates, context)
