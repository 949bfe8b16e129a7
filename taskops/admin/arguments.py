"""Stored task arguments, pretty-printed as HTML with their envelopes decoded.

The arguments are the exact encoded JSON the codec sent. Nothing here
imports or decodes by name: model envelopes become links (``links.Linker``,
no query; content types come from Django's cache), attrs envelopes show their
registered name, kombu's show their value and type; anything else prints as
the JSON it is, escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from taskops.admin.links import Linker
from taskops.models import ObjectRef

#: Nesting shown in pretty-printed arguments before "…".
MAX_DEPTH = 12

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

    def render_stored(self, text: str) -> SafeString | None:
        """Stored JSON text, rendered; None when it is not JSON (the page then shows the text as it is)."""
        value = parse_json(text)
        return None if isinstance(value, str) else self.render(value)

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
