"""The generic form's inputs, read from a task's signature: one per parameter, one per attribute of an attrs one.

``specs(task)`` lists what the form asks for (``Spec``); ``FieldFactory``
makes each a form field: a model (``Book``, ``list[Book]``, ``Book | None``)
gets an object picker on the admin's own autocomplete when its
``ModelAdmin`` has ``search_fields`` and the user may view it, otherwise a
text field for primary keys, and the form says why (``Picker``); ``int``,
``str``, ``bool``, ``float``, ``Decimal``, ``datetime``, ``date`` and
``UUID`` a typed input; an attrs class one input per attribute (nested ones
too, down to ``MAX_ATTRS_DEPTH``; deeper, JSON structured by cattrs);
anything else JSON. ``argument`` turns the cleaned inputs back into the
value the task gets.

No query here, but the one that fetches the objects a field names (one per
field).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import typing
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from django import forms
from django.apps import apps
from django.contrib.admin import AdminSite
from django.contrib.admin.widgets import (
    AdminDateWidget,
    AdminSplitDateTime,
    AutocompleteMixin,
    AutocompleteSelect,
    AutocompleteSelectMultiple,
)
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest
from django.utils.translation import gettext as _

from taskops.admin.objects import python_pk
from taskops.admin.visibility import Visibility
from taskops.redispatch import policy
from taskops.redispatch.signature import Kind, classify, parameters
from taskops.wire.structure import converter

#: attrs classes inside attrs classes get inputs of their own down to this depth; deeper, one JSON input.
MAX_ATTRS_DEPTH = 3
#: Prefix of the inputs' names: ``arg-report-due`` is attribute ``due`` of parameter ``report``.
PREFIX = "arg"
#: What separates primary keys typed in a text field.
PK_SEPARATORS = re.compile(r"[\s,]+")


@attrs.frozen
class Spec:
    """One input of the form: a parameter of the task, or an attribute of an attrs parameter."""

    #: ``("report", "due")``: attribute ``due`` of parameter ``report``.
    path: tuple[str, ...]
    kind: Kind
    #: The model (MODEL, MODELS), attrs class (ATTRS) or type (SCALAR); None for JSON.
    type: Any
    #: Without a default: it must be given (``None`` is a value when ``optional_none``).
    required: bool
    default: Any = None
    optional_none: bool = False
    #: An attrs parameter's attributes (none: one JSON input for the whole object).
    children: tuple[Spec, ...] = ()

    @property
    def name(self) -> str:
        """The input's name in the form."""
        return "-".join((PREFIX, *self.path))

    @property
    def label(self) -> str:
        return ".".join(self.path)

    @property
    def type_name(self) -> str:
        """The annotation, as the form shows it: ``Question``, ``list[Answer]``, ``int | None``, ``JSON``."""
        if self.kind is Kind.JSON:
            return "JSON"
        name = f"list[{self.type.__name__}]" if self.kind is Kind.MODELS else self.type.__name__
        return f"{name} | None" if self.optional_none else name

    @property
    def takes_objects(self) -> bool:
        return self.kind in (Kind.MODEL, Kind.MODELS)

    def walk(self) -> Iterator[Spec]:
        """This spec, then its attributes' (depth first)."""
        yield self
        for child in self.children:
            yield from child.walk()


def specs(task: Any) -> list[Spec]:
    """What the form asks for to call ``task``, in the signature's order."""
    return [spec_for((p.name,), p.kind, p.type, p.required, p.default, p.optional_none) for p in parameters(task)]


def spec_for(path: tuple[str, ...], kind: Kind, typ: Any, required: bool, default: Any, optional: bool) -> Spec:
    children: tuple[Spec, ...] = ()
    if kind is Kind.ATTRS and len(path) <= MAX_ATTRS_DEPTH:
        children = tuple(attribute_specs(typ, path))
    return Spec(path, kind, typ, required, default, optional, children)


def attribute_specs(cls: type, path: tuple[str, ...]) -> Iterator[Spec]:
    """One spec per attribute that ``cls.__init__`` takes."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, AttributeError, TypeError):
        hints = {}
    for attribute in attrs.fields(cls):
        if not attribute.init:
            continue
        kind, typ, optional = classify(hints.get(attribute.name, attribute.type))
        required = attribute.default is attrs.NOTHING
        # A factory's default is made at each call: the input starts empty and, left empty, gets it.
        default = None if required or hasattr(attribute.default, "factory") else attribute.default
        yield spec_for((*path, attribute.alias), kind, typ, required, default, optional)


def object_specs(all_specs: list[Spec]) -> list[Spec]:
    """Every input that takes objects, attributes of attrs parameters included."""
    return [spec for top in all_specs for spec in top.walk() if spec.takes_objects]


def offered_models(base: type[Model]) -> list[type[Model]]:
    """The models an input annotated with ``base`` may take: ``base`` and its subclasses, those that may travel."""
    found = [model for model in apps.get_models() if issubclass(model, base) and policy.model_allowed(model)]
    return sorted(found, key=lambda model: (model is not base, model._meta.label_lower))


class Picker(enum.Enum):
    """How a model's objects are chosen on the form, and why."""

    #: The admin's autocomplete, searching with the model's ``ModelAdmin.search_fields``.
    SEARCH = "search"
    NOT_REGISTERED = "not registered"
    NO_SEARCH_FIELDS = "no search fields"
    NOT_VIEWABLE = "not viewable"
    NOT_ALLOWED = "not allowed"

    def note(self, model: type[Model]) -> str:
        """What the form says under a text field for pks."""
        names = {"model": model._meta.verbose_name_plural, "label": model._meta.label_lower}
        notes = {
            Picker.NOT_REGISTERED: _("%(model)s have no admin page to search them: type their primary keys."),
            Picker.NO_SEARCH_FIELDS: _(
                "The admin of %(model)s has no search_fields to search them by: type their primary keys."
            ),
            Picker.NOT_VIEWABLE: _("You may not view %(model)s."),
            Picker.NOT_ALLOWED: _("%(label)s is not in TASKOPS['ALLOWED_MODELS']: it may not travel to a task."),
        }
        return notes[self] % names if self in notes else ""


def picker_for(admin_site: AdminSite, request: HttpRequest, visibility: Visibility, model: type[Model]) -> Picker:
    if not policy.model_allowed(model):
        return Picker.NOT_ALLOWED
    if not visibility.may_view(model):
        return Picker.NOT_VIEWABLE
    model_admin = admin_site._registry.get(model)
    if model_admin is None:
        return Picker.NOT_REGISTERED
    return Picker.SEARCH if model_admin.get_search_fields(request) else Picker.NO_SEARCH_FIELDS


@attrs.frozen
class PickedRelation:
    model: type[Model]
    field_name: str


@attrs.frozen
class PickedField:
    """What Django's autocomplete widgets read of a foreign key, for an input of the form.

    The widgets send ``app_label``, ``model_name`` and ``field_name`` to the
    view; here they name the model to search and the input, which
    ``ObjectAutocomplete`` checks against the task's signature.
    """

    model: type[Model]
    name: str
    remote_field: PickedRelation


class TaskInputPicker(AutocompleteMixin):
    """Django's autocomplete widget for one input of the form, asking taskops' autocomplete URL."""

    def __init__(self, model: type[Model], input_name: str, url: str, admin_site: AdminSite) -> None:
        pk = model._meta.pk
        assert pk is not None
        field: Any = PickedField(model, input_name, PickedRelation(model, pk.name))
        super().__init__(field, admin_site)
        self.url, self.model = url, model

    def get_url(self) -> str:
        return self.url

    def optgroups(self, name: str, value: Any, attr: Any = None) -> Any:
        """Django's, without the posted values that cannot be a pk: its query would raise on them (a 500),
        and the field says what is wrong with them."""
        valid = [item for item in value if python_pk(self.model, str(item)) is not None]
        return super().optgroups(name, valid, attr)


class ObjectPicker(TaskInputPicker, AutocompleteSelect):
    """One object, searched with the model admin's ``search_fields``."""


class ObjectsPicker(TaskInputPicker, AutocompleteSelectMultiple):
    """Any number of objects, searched with the model admin's ``search_fields``."""


class ObjectPksField(forms.CharField):
    """Objects by their primary keys, typed (separated by commas, spaces or new lines); cleans to instances."""

    def __init__(self, model: type[Model], *, many: bool, refusal: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model, self.many, self.refusal = model, many, refusal

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        typed = [pk for pk in PK_SEPARATORS.split(text or "") if pk]
        if not typed:
            return [] if self.many else None
        if self.refusal:
            raise ValidationError(self.refusal)
        if not self.many and len(typed) > 1:
            raise ValidationError(_("Type one primary key."))
        wanted = {pk: python_pk(self.model, pk) for pk in typed}
        bad = [pk for pk, value in wanted.items() if value is None]
        if bad:
            raise ValidationError(_("Not a primary key of %(model)s: %(pks)s.") % self.names(bad))
        rows = self.model._default_manager.in_bulk([value for value in wanted.values()])
        gone = [pk for pk, value in wanted.items() if value not in rows]
        if gone:
            raise ValidationError(_("No %(model)s with primary key %(pks)s.") % self.names(gone))
        found = [rows[value] for value in dict.fromkeys(wanted.values())]
        return found if self.many else found[0]

    def names(self, pks: list[str]) -> dict[str, str]:
        return {"model": str(self.model._meta.verbose_name), "pks": ", ".join(pk[:40] for pk in pks[:10])}


def scalar_field(spec: Spec) -> forms.Field:
    """A typed input for ``int``, ``str``, ``bool``, ``float``, ``Decimal``, ``datetime``, ``date``, ``UUID``."""
    required = spec.required and not spec.optional_none
    if spec.type is bool:
        if spec.optional_none:
            return forms.NullBooleanField(required=False)
        return forms.BooleanField(required=False, initial=spec.default)
    makers: dict[type, Callable[..., forms.Field]] = {
        int: forms.IntegerField,
        float: forms.FloatField,
        decimal.Decimal: forms.DecimalField,
        uuid.UUID: forms.UUIDField,
        dt.datetime: lambda **kw: forms.SplitDateTimeField(widget=AdminSplitDateTime, **kw),
        dt.date: lambda **kw: forms.DateField(widget=AdminDateWidget, **kw),
        str: lambda **kw: forms.CharField(strip=False, **kw),
    }
    return makers[spec.type](required=required, initial=spec.default)


class FieldFactory:
    """Form fields for one request: what the user may view decides between a picker and a text field."""

    def __init__(self, admin_site: AdminSite, request: HttpRequest, visibility: Visibility, url: str) -> None:
        self.admin_site, self.request, self.visibility = admin_site, request, visibility
        #: taskops' autocomplete URL for the chosen task.
        self.url = url

    def picker(self, model: type[Model]) -> Picker:
        return picker_for(self.admin_site, self.request, self.visibility, model)

    def field(self, spec: Spec) -> forms.Field:
        """The input of one spec (an attrs spec with attributes has none: its attributes have theirs)."""
        if spec.takes_objects:
            return self.objects_field(spec, spec.type, many=spec.kind is Kind.MODELS)
        if spec.kind is Kind.SCALAR:
            return scalar_field(spec)
        help_text = _("JSON.") if spec.kind is Kind.JSON else _("JSON, structured as %(type)s.") % {"type": spec.type}
        return forms.JSONField(required=spec.required and not spec.optional_none, help_text=help_text)

    def objects_field(self, spec: Spec, model: type[Model], *, many: bool, required: bool | None = None) -> forms.Field:
        """A picker on the admin's autocomplete, or a text field for pks with a note that says why."""
        required = spec.required and not spec.optional_none if required is None else required
        picker = self.picker(model)
        if picker is Picker.SEARCH:
            queryset = model._default_manager.all()
            if many:
                widget: forms.Widget = ObjectsPicker(model, spec.name, self.url, self.admin_site)
                return forms.ModelMultipleChoiceField(queryset, required=required, widget=widget)
            widget = ObjectPicker(model, spec.name, self.url, self.admin_site)
            return forms.ModelChoiceField(queryset, required=required, widget=widget)
        typed = _("Primary keys, separated by commas or spaces.") if many else _("A primary key.")
        refusal = picker.note(model) if picker in (Picker.NOT_VIEWABLE, Picker.NOT_ALLOWED) else ""
        return ObjectPksField(
            model, many=many, refusal=refusal, required=required, help_text=f"{picker.note(model)} {typed}"
        )


def is_empty(spec: Spec, value: Any) -> bool:
    """Nothing was entered (for objects, none chosen; JSON's ``[]`` and ``{}`` are values)."""
    return value is None or value == "" or (spec.takes_objects and not value)


def argument(spec: Spec, cleaned: dict[str, Any]) -> tuple[bool, Any]:
    """``(given, value)`` of one spec from the form's cleaned data; not given: the task's default applies.

    Raises ``ValueError`` or ``TypeError`` (attrs validators, cattrs) for a value the class refuses.
    """
    if spec.kind is Kind.ATTRS and spec.children:
        values = {}
        for child in spec.children:
            given, value = argument(child, cleaned)
            if given:
                values[child.path[-1]] = value
        if not values and not spec.required:
            return False, None
        return True, spec.type(**values)
    value = cleaned.get(spec.name)
    if spec.kind is Kind.MODELS and value is not None:
        value = list(value)
    if is_empty(spec, value):
        return (True, None) if spec.required else (False, None)
    if spec.kind is Kind.ATTRS:  # no attributes of its own on the form: JSON, structured by cattrs
        return True, converter.structure(value, spec.type)
    return True, value
