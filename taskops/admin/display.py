"""How dispatches look in the admin: durations, badges, object links, arguments.

Everything here returns escaped HTML (``format_html``) or plain text, never
trusts stored text, and issues no query except where a docstring says so:
links are built from the admin site's registry and ``reverse``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote as url_quote

import attrs
from django.contrib.admin import AdminSite
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from taskops.models import Drift, ObjectRef, State

#: Characters of an object's ``str()`` shown next to its label.
REPR_WORDS = 6
#: Nesting shown in pretty-printed arguments before "…".
MAX_DEPTH = 12


def format_duration(value: dt.timedelta | None) -> str:
    """A duration as an operator reads it: "0.42 s", "12 s", "3 min 5 s", "2 h 3 min"."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.2f} s"
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


#: CSS class of each state's badge (colours live in taskops/admin.css).
STATE_TONES: dict[str, str] = {
    State.PENDING: "idle",
    State.RECEIVED: "idle",
    State.STARTED: "busy",
    State.RETRY: "warn",
    State.SUCCESS: "ok",
    State.FAILURE: "bad",
    State.REVOKED: "bad",
    State.REJECTED: "bad",
    State.IGNORED: "idle",
    State.SKIPPED: "warn",
}

DRIFT_TONES: dict[str, str] = {
    Drift.PENDING: "idle",
    Drift.UNCHANGED: "ok",
    Drift.CHANGED: "warn",
    Drift.MISSING: "bad",
}


def state_badge(state: str) -> SafeString:
    """A coloured label for a task state (built once per state and language: pages show hundreds)."""
    return _state_badge(state, get_language())


@functools.lru_cache(maxsize=256)
def _state_badge(state: str, language: str | None) -> SafeString:
    label = State(state).label if state in State.values else state
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', STATE_TONES.get(state, "idle"), label)


def format_time(value: dt.datetime | None) -> str:
    """A moment to the second in the current time zone (cheaper than the ``date`` filter, row after row)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def drift_badge(drift: str, *, likely_race: bool = False, changed_fields: Iterable[str] = ()) -> SafeString:
    """Drift as a label, with the changed fields or the race named."""
    return _drift_badge(drift, likely_race, tuple(sorted({str(name) for name in changed_fields})), get_language())


@functools.lru_cache(maxsize=1024)
def _drift_badge(drift: str, likely_race: bool, fields: tuple[str, ...], language: str | None) -> SafeString:
    if likely_race:
        return format_html('<span class="taskops-badge taskops-bad">{}</span>', _("likely race"))
    if drift == Drift.PENDING:
        return format_html('<span class="taskops-badge taskops-idle">{}</span>', _("not checked"))
    label = Drift(drift).label.lower() if drift in Drift.values else drift
    if drift == Drift.CHANGED and fields:
        shown = ", ".join(fields[:3]) + (", …" if len(fields) > 3 else "")
        return format_html(
            '<span class="taskops-badge taskops-warn">{}</span> <span class="taskops-fields">{}</span>', label, shown
        )
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', DRIFT_TONES.get(drift, "idle"), label)


@attrs.frozen
class ObjectLink:
    """One referenced object as the admin shows it: label, repr, and where to go."""

    #: "Question #42"
    label: str
    #: The object's ``str()`` at dispatch, shortened.
    text: str
    #: The object's own admin change page, when its model is registered and viewable.
    url: str | None
    #: Every dispatch that referenced the object.
    history_url: str

    def html(self) -> SafeString:
        """``<a>Question #42</a> - first words…`` plus a small history link."""
        label = format_html('<a href="{}">{}</a>', self.url, self.label) if self.url else conditional_escape(self.label)
        text = format_html(' <span class="taskops-repr">\u2013 {}</span>', self.text) if self.text else ""
        history = format_html(
            ' <a class="taskops-history" href="{}" title="{}">{}</a>', self.history_url, _("Task history"), "⟲"
        )
        return format_html('<span class="taskops-ref">{}{}{}</span>', label, text, history)


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

    The admin site's registry says whether a model has a change page; the
    user's permission on that ``ModelAdmin`` says whether to link it.
    """

    def __init__(self, admin_site: AdminSite, request: HttpRequest | None) -> None:
        self.admin_site = admin_site
        self.request = request
        self._viewable: dict[type[Any], bool] = {}
        self._patterns = URLPatterns()

    def can_view(self, model: type[Any] | None) -> bool:
        """The model is registered on this admin site and the user may view it."""
        if model is None:
            return False
        if model not in self._viewable:
            model_admin = self.admin_site._registry.get(model)
            self._viewable[model] = model_admin is not None and (
                self.request is None or model_admin.has_view_permission(self.request)
            )
        return self._viewable[model]

    def change_url(self, content_type: ContentType, object_pk: str) -> str | None:
        """The object's admin change page, or None if it has none for this user."""
        model = content_type.model_class()
        if not self.can_view(model):
            return None
        name = f"{self.admin_site.name}:{content_type.app_label}_{content_type.model}_change"
        return self._patterns.url(name, object_pk)

    def history_url(self, content_type_id: int, object_pk: str) -> str:
        """The per-object task history page."""
        url = self._patterns.url(f"{self.admin_site.name}:taskops_dispatch_object_history", object_pk, content_type_id)
        if url is None:
            raise NoReverseMatch("DispatchAdmin is not registered on this admin site")
        return url

    def link(self, content_type: ContentType, object_pk: str, object_repr: str = "") -> ObjectLink:
        """The link for one object (``object_repr`` is what the dispatch recorded)."""
        return ObjectLink(
            label=object_label(content_type, object_pk),
            text=Truncator(object_repr).words(REPR_WORDS, truncate="…") if object_repr else "",
            url=self.change_url(content_type, object_pk),
            history_url=self.history_url(content_type.pk, object_pk),
        )

    def ref_link(self, ref: ObjectRef) -> ObjectLink:
        """The link for an ``ObjectRef`` (its content type must be loaded or cached)."""
        return self.link(ref.content_type, ref.object_pk, ref.object_repr)


def object_label(content_type: ContentType, object_pk: str) -> str:
    """ "Question #42": the model's verbose name and the primary key."""
    model = content_type.model_class()
    name = str(model._meta.verbose_name) if model is not None else content_type.model
    return f"{capfirst(name)} #{object_pk}"


def refs_prefetch() -> Prefetch[Any]:
    """Refs for display, in one query for any number of dispatches: content type
    joined, the bulky JSON (digests, values) left out."""
    refs = ObjectRef.objects.select_related("content_type").defer("digests", "values").order_by("pk")
    return Prefetch("refs", queryset=refs)


# --- arguments ---------------------------------------------------------------

#: Envelope markers of kombu's JSON that carry one scalar (shown as "marker value").
KOMBU_SCALARS = frozenset({"datetime", "date", "time", "decimal", "bytes"})


class ArgumentPrinter:
    """Pretty-prints stored (encoded) arguments as HTML, decoding envelopes.

    Model refs become links (with the ``object_repr`` the dispatch recorded),
    attrs objects show their registered name, kombu's envelopes show their
    value with its type. Anything unknown is printed as the JSON it is.
    """

    indent = "  "

    def __init__(self, linker: Linker, refs: Iterable[ObjectRef] = ()) -> None:
        self.linker = linker
        self.reprs = {(ref.content_type_id, ref.object_pk): ref.object_repr for ref in refs}

    def render(self, value: Any) -> SafeString:
        """The whole value, as the inner HTML of a ``<pre>``."""
        return self._value(value, 0)

    def _value(self, value: Any, depth: int) -> SafeString:
        if depth > MAX_DEPTH:
            return mark_safe("…")
        if isinstance(value, dict):
            envelope = self._envelope(value, depth)
            if envelope is not None:
                return envelope
            return self._mapping(value, depth)
        if isinstance(value, list):
            return self._sequence(value, depth)
        return format_html('<span class="taskops-json-{}">{}</span>', json_kind(value), json.dumps(value))

    def _mapping(self, value: Mapping[str, Any], depth: int) -> SafeString:
        if not value:
            return mark_safe("{}")
        pad = self.indent * (depth + 1)
        items = [
            format_html(
                '{}<span class="taskops-json-key">{}</span>: {}', pad, json.dumps(key), self._value(item, depth + 1)
            )
            for key, item in value.items()
        ]
        return format_html("{{\n{}\n{}}}", mark_safe(",\n".join(items)), self.indent * depth)

    def _sequence(self, value: list[Any], depth: int) -> SafeString:
        if not value:
            return mark_safe("[]")
        pad = self.indent * (depth + 1)
        items = [format_html("{}{}", pad, self._value(item, depth + 1)) for item in value]
        return format_html("[\n{}\n{}]", mark_safe(",\n".join(items)), self.indent * depth)

    def _envelope(self, value: dict[str, Any], depth: int) -> SafeString | None:
        """An envelope rendered, or None if ``value`` is not one this printer knows."""
        if set(value) != {"__type__", "__value__"} or not isinstance(value["__type__"], str):
            return None
        marker, inner = value["__type__"], value["__value__"]
        if marker == "taskops.model" and isinstance(inner, dict):
            return self._ref(inner.get("model"), inner.get("pk"))
        if marker == "taskops.models" and isinstance(inner, dict) and isinstance(inner.get("pks"), list):
            return self._refs(inner.get("model"), inner["pks"], depth)
        if marker == "taskops.attrs" and isinstance(inner, dict):
            return format_html(
                '<span class="taskops-json-type">{}</span> {}',
                inner.get("class", "?"),
                self._value(inner.get("data"), depth),
            )
        if marker == "uuid" and isinstance(inner, dict) and isinstance(inner.get("hex"), str):
            return format_html('<span class="taskops-json-type">uuid</span> {}', inner["hex"])
        if marker in KOMBU_SCALARS and isinstance(inner, str | int | float):
            return format_html('<span class="taskops-json-type">{}</span> {}', marker, inner)
        return None

    def _ref(self, label: Any, pk: Any) -> SafeString | None:
        content_type = content_type_for_label(label)
        if content_type is None or pk is None:
            return None
        object_pk = str(pk)
        link = self.linker.link(content_type, object_pk, self.reprs.get((content_type.pk, object_pk), ""))
        return link.html()

    def _refs(self, label: Any, pks: list[Any], depth: int) -> SafeString | None:
        content_type = content_type_for_label(label)
        if content_type is None:
            return None
        if not pks:
            return format_html('<span class="taskops-json-type">{}</span> []', label)
        pad = self.indent * (depth + 1)
        items = format_html_join(",\n", "{}{}", ((pad, self._ref(label, pk)) for pk in pks))
        return format_html(
            '<span class="taskops-json-type">{} \u00d7{}</span> [\n{}\n{}]', label, len(pks), items, self.indent * depth
        )


def json_kind(value: Any) -> str:
    """The CSS suffix for a JSON scalar."""
    if value is None or isinstance(value, bool):
        return "literal"
    if isinstance(value, int | float):
        return "number"
    return "string"


def content_type_for_label(label: Any) -> ContentType | None:
    """The content type for ``app_label.modelname`` (cached by Django after the first lookup)."""
    if not isinstance(label, str) or label.count(".") != 1:
        return None
    app_label, model = label.lower().split(".")
    try:
        return ContentType.objects.get_by_natural_key(app_label, model)
    except ContentType.DoesNotExist:
        return None


def pretty_json(value: Any) -> str:
    """Plain indented JSON text, for results and the exact stored arguments."""
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def parse_json(text: str | None) -> Any:
    """Stored JSON text as data; text that is not JSON stays text."""
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
