"""Links to the objects a dispatch referenced, and to the admin's own pages.

``Linker`` turns (content type, pk) into an ``ObjectLink``: the object's own
admin change page when its model is registered and the user may view it, and
its task history. What the link shows beyond the content type and the pk
(the object's ``str()``, its change page) is what ``Visibility``, the one
policy of who may see what, allows. It issues no query: the admin site's
registry and the user's permissions say what to show, and each URL name is
reversed once per page (``URLPatterns``), however many objects the page shows.

``refs_prefetch`` loads what the links need for a page of dispatches in one
query.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote

import attrs
from django.contrib.admin import AdminSite
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Prefetch
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext as _

from taskops.admin.visibility import Visibility
from taskops.models import ObjectRef

#: Words of an object's ``str()`` shown next to its label.
REPR_WORDS = 6


@attrs.frozen
class ObjectLink:
    """One referenced object as the admin shows it: label, repr, and where to go."""

    #: "Question #42": the content type and the pk, shown to everyone.
    label: str
    #: The object's ``str()``, shortened; empty for users who may not view its model.
    text: str
    #: The object's own admin change page, when its model is registered and viewable.
    url: str | None
    #: Every dispatch that referenced the object.
    history_url: str
    #: The user may view the object's model: its ``str()``, values and existence may be shown.
    visible: bool = False
    #: The object's whole ``str()`` (as recorded, at most 200 characters); empty for users who may not view it.
    full_text: str = ""

    def html(self, *, matched: bool = False) -> SafeString:
        """``<a>Question #42</a> - first words…`` plus a small history link; ``matched``: what a search found."""
        label = format_html('<a href="{}">{}</a>', self.url, self.label) if self.url else conditional_escape(self.label)
        text = format_html(' <span class="taskops-repr">\u2013 {}</span>', self.text) if self.text else ""
        history = format_html(
            ' <a class="taskops-history" href="{}" title="{}">{}</a>', self.history_url, _("Task history"), "⟲"
        )
        css = "taskops-ref taskops-match" if matched else "taskops-ref"
        return format_html('<span class="{}">{}{}{}</span>', css, label, text, history)

    def name_html(self) -> SafeString:
        """The object by its ``str()`` when it may be shown, else by its label; linked to its change page."""
        name = self.text or self.label
        return format_html('<a href="{}">{}</a>', self.url, name) if self.url else conditional_escape(name)


class URLPatterns:
    """``reverse`` once per URL name, then fill in each object's pk.

    A page links to hundreds of objects; reversing every link costs more than
    the page's queries. The pattern is reversed with a placeholder pk (so the
    URLconf stays the only source of truth) and the real, admin-quoted pk is
    substituted.
    """

    placeholder = "0taskops0pk0"

    def __init__(self) -> None:
        self._patterns: dict[tuple[str, tuple[Any, ...]], str | None] = {}

    def url(self, name: str, object_pk: Any, *args: Any) -> str | None:
        """``reverse(name, args=[*args, quote(object_pk)])``, or None if there is no such URL."""
        key = (name, args)
        if key not in self._patterns:
            try:
                self._patterns[key] = reverse(name, args=[*args, self.placeholder])
            except NoReverseMatch:
                self._patterns[key] = None
        pattern = self._patterns[key]
        if pattern is None:
            return None
        # As reverse() would: the admin's quoting, then the URL's own.
        return pattern.replace(self.placeholder, url_quote(quote(str(object_pk)), safe=RFC3986_SUBDELIMS + "/~:@"))


class Linker:
    """Builds ``ObjectLink``s for one request against one admin site, without queries.

    The admin site's registry says whether a model has a change page;
    ``visibility`` says whether the user may see the model's rows at all.
    Pages ask ``visibility`` for anything else they show of another model.
    """

    def __init__(self, admin_site: AdminSite, request: HttpRequest | None) -> None:
        self.admin_site = admin_site
        self.request = request
        #: Who may see what (no request: nothing of any other model's rows).
        self.visibility = Visibility(admin_site, request)
        self._patterns = URLPatterns()

    def change_url(self, content_type: ContentType, object_pk: str) -> str | None:
        """The object's admin change page, or None if it has none for this user."""
        return self.model_change_url(content_type.model_class(), object_pk)

    def model_change_url(self, model: type[Model] | None, object_pk: Any) -> str | None:
        """The change page of ``model``'s object ``object_pk``, or None if it has none for this user."""
        if model is None or not self.visibility.may_link(model):
            return None
        opts = model._meta
        return self._patterns.url(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", object_pk)

    def history_url(self, content_type_id: int, object_pk: str) -> str:
        """The per-object task history page."""
        url = self._patterns.url(f"{self.admin_site.name}:taskops_dispatch_object_history", object_pk, content_type_id)
        if url is None:
            raise NoReverseMatch("DispatchAdmin is not registered on this admin site")
        return url

    def link(self, content_type: ContentType, object_pk: str, object_repr: str = "") -> ObjectLink:
        """The link for one object (``object_repr``: its ``str()``, shown only to users who may view it)."""
        visible = self.visibility.may_view(content_type.model_class())
        return ObjectLink(
            label=object_label(content_type, object_pk),
            text=Truncator(object_repr).words(REPR_WORDS, truncate="…") if object_repr and visible else "",
            url=self.change_url(content_type, object_pk),
            history_url=self.history_url(content_type.pk, object_pk),
            visible=visible,
            full_text=object_repr if visible else "",
        )

    def instance_link(self, instance: Model) -> ObjectLink:
        """The link for a loaded instance (a dispatch's operator, ...), with its ``str()`` now."""
        content_type = ContentType.objects.get_for_model(instance)
        return self.link(content_type, str(instance.pk), str(instance))

    def ref_link(self, ref: ObjectRef) -> ObjectLink:
        """The link for an ``ObjectRef`` (its content type must be loaded or cached)."""
        return self.link(ref.content_type, ref.object_pk, ref.object_repr)


def object_label(content_type: ContentType, object_pk: str) -> str:
    """ "Question #42": the model's verbose name and the primary key."""
    return f"{model_label(content_type)} #{object_pk}"


def model_label(content_type: ContentType) -> str:
    """ "Question": the model's verbose name (the content type's name once the model is uninstalled)."""
    model = content_type.model_class()
    return capfirst(str(model._meta.verbose_name) if model is not None else content_type.model)


def refs_prefetch() -> Prefetch[Any]:
    """Refs for display, in one query for any number of dispatches: content type
    joined, the bulky JSON (digests, values) left out."""
    refs = ObjectRef.objects.select_related("content_type").defer("digests", "values").order_by("pk")
    return Prefetch("refs", queryset=refs)
