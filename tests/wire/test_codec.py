"""The wire format: what the encoder writes, what the decoder accepts and refuses."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import attrs
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from kombu.exceptions import EncodeError
from kombu.serialization import dumps as kombu_dumps
from kombu.serialization import loads as kombu_loads

import taskops
from taskops import wire as codec
from taskops.wire import AttrsPlaceholder, CodecError, Invalid, ModelRef, RefListPlaceholder, RefPlaceholder
from tests.testapp.models import Book, Country, Question, Tag

pytestmark = pytest.mark.django_db


@taskops.register(name="tests.codec.Point")
@attrs.frozen
class Point:
    x: int
    y: int


@taskops.register
@attrs.frozen
class Shape:
    name: str
    corners: list[Point]
    book: Book | None = None
    at: dt.datetime | None = None
    size: decimal.Decimal = decimal.Decimal("1.5")
    tag_id: uuid.UUID | None = None


@attrs.frozen
class NeverRegistered:
    x: int


def send(value: Any) -> str:
    """Encode with kombu's json serializer, as a task message would be."""
    content_type, _encoding, data = kombu_dumps(value, serializer="json")
    assert content_type == "application/json"
    return data


def receive(data: str | bytes) -> Any:
    """Decode with kombu's registry, as the worker does."""
    return kombu_loads(data, "application/json", "utf-8", accept=["application/json"])


def envelope(marker: Any, value: Any) -> dict[str, Any]:
    return {"__type__": marker, "__value__": value}


# --- encoding -----------------------------------------------------------------------


def test_instances_of_each_pk_type_travel_as_label_and_json_pk() -> None:
    book = Book.objects.create(title="b")
    tag = Tag.objects.create(name="t")
    country = Country.objects.create(code="FR", name="France")

    assert json.loads(send([book, tag, country])) == [
        envelope("taskops.model", {"model": "testapp.book", "pk": book.pk}),
        envelope("taskops.model", {"model": "testapp.tag", "pk": str(tag.pk)}),
        envelope("taskops.model", {"model": "testapp.country", "pk": "FR"}),
    ]


def test_queryset_travels_as_one_envelope_in_its_order() -> None:
    books = [Book.objects.create(title=f"b{i}", pages=i) for i in range(3)]

    wire = json.loads(send(Book.objects.order_by("-pages")))

    assert wire == envelope("taskops.models", {"model": "testapp.book", "pks": [b.pk for b in reversed(books)]})


def test_evaluated_queryset_is_encoded_without_a_query(django_assert_num_queries: Any) -> None:
    books = [Book.objects.create(title=f"b{i}") for i in range(2)]
    queryset = Book.objects.order_by("pk")
    list(queryset)

    with django_assert_num_queries(0):
        wire = json.loads(send(queryset))

    assert wire["__value__"]["pks"] == [b.pk for b in books]


def test_values_queryset_is_plain_data() -> None:
    Book.objects.create(title="only")

    assert json.loads(send(Book.objects.values_list("title", flat=True))) == ["only"]


def test_unsaved_instance_fails_at_publish_naming_the_model() -> None:
    with pytest.raises(EncodeError, match=r"unsaved testapp\.Book instance"):
        send([Book(title="not saved")])


def test_unregistered_attrs_object_fails_at_publish_saying_how_to_register() -> None:
    with pytest.raises(EncodeError, match=r"NeverRegistered: the class is not registered.*@taskops\.register"):
        send({"x": NeverRegistered(1)})


@override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.tag"]})
def test_disallowed_model_fails_at_publish() -> None:
    with pytest.raises(EncodeError, match=r"testapp\.book.*ALLOWED_MODELS"):
        send(Book.objects.create(title="b"))


def test_attrs_object_travels_with_its_registered_name_and_typed_values_inside() -> None:
    book = Book.objects.create(title="b")
    at = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    tag_id = uuid.uuid4()
    shape = Shape("tri", [Point(0, 0), Point(1, 0)], book=book, at=at, tag_id=tag_id)

    wire = json.loads(send(shape))

    assert wire == envelope(
        "taskops.attrs",
        {
            "class": "tests.wire.test_codec.Shape",
            "data": {
                "name": "tri",
                "corners": [{"x": 0, "y": 0}, {"x": 1, "y": 0}],
                "book": envelope("taskops.model", {"model": "testapp.book", "pk": book.pk}),
                "at": envelope("datetime", at.isoformat()),
                "size": envelope("decimal", "1.5"),
                "tag_id": envelope("uuid", {"hex": tag_id.hex}),
            },
        },
    )
    assert json.loads(send(Point(1, 2)))["__value__"]["class"] == "tests.codec.Point"


# --- decoding -----------------------------------------------------------------------


def test_decoding_gives_placeholders_and_never_queries(django_assert_num_queries: Any) -> None:
    book = Book.objects.create(title="b")
    tag = Tag.objects.create(name="t")
    data = send([book, Tag.objects.filter(pk=tag.pk), Point(1, 2)])

    with django_assert_num_queries(0):
        value = receive(data)

    assert value == [
        RefPlaceholder(ModelRef("testapp.book", book.pk)),
        RefListPlaceholder("testapp.tag", (str(tag.pk),)),
        AttrsPlaceholder(Point, "tests.codec.Point", {"x": 1, "y": 2}),
    ]


def test_resolve_gives_fresh_instances_and_attrs_objects() -> None:
    book = Book.objects.create(title="old")
    value = receive(send({"shape": Shape("sq", [Point(0, 0)], book=book), "books": [book]}))
    Book.objects.filter(pk=book.pk).update(title="new")

    resolved = codec.resolve(value)

    assert resolved == {"shape": Shape("sq", [Point(0, 0)], book=book), "books": [book]}
    assert resolved["shape"].book.title == "new"


def test_pk_in_another_json_form_is_the_same_ref() -> None:
    tag = Tag.objects.create(name="t")
    as_upper = str(tag.pk).upper()

    assert receive(json.dumps(envelope("taskops.model", {"model": "testapp.Tag", "pk": as_upper}))) == RefPlaceholder(
        ModelRef("testapp.tag", str(tag.pk))
    )
    assert receive(json.dumps(envelope("taskops.model", {"model": "testapp.book", "pk": "7"}))) == RefPlaceholder(
        ModelRef("testapp.book", 7)
    )


def test_placeholders_encode_back_to_what_arrived() -> None:
    book = Book.objects.create(title="b")
    data = send([book, Book.objects.all(), Shape("s", [], book=book), envelope("nope", 1)])

    again = send(receive(data))

    assert json.loads(again)[:3] == json.loads(data)[:3]
    assert receive(again)[3] == Invalid("unknown type marker 'nope'")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (envelope("pickle", "x"), "unknown type marker 'pickle'"),
        (envelope(7, "x"), "type marker must be a string"),
        (envelope("taskops.attrs", {"class": "os.system", "data": {}}), "class 'os.system' is not registered"),
        (
            envelope("taskops.attrs", {"class": "tests.wire.test_codec.NeverRegistered", "data": {"x": 1}}),
            "not registered",
        ),
        (envelope("taskops.attrs", ["x"]), "expected {'class': str, 'data': ...}"),
        (envelope("taskops.model", {"model": "testapp.book"}), "expected {'model': str, 'pk': int | str}"),
        (envelope("taskops.model", {"model": "book", "pk": 1}), "must look like 'app_label.modelname'"),
        (envelope("taskops.model", {"model": "nope.thing", "pk": 1}), "'nope.thing' is not installed"),
        (envelope("taskops.model", {"model": "testapp.book", "pk": True}), "must be an int or a str"),
        (envelope("taskops.model", {"model": "testapp.book", "pk": [1]}), "must be an int or a str"),
        (envelope("taskops.model", {"model": "testapp.book", "pk": "x"}), "'x' is not a valid pk for testapp.book"),
        (envelope("taskops.model", {"model": "testapp.book", "pk": 10**30}), "not a valid pk for testapp.book"),
        (envelope("taskops.model", {"model": "testapp.tag", "pk": "not-a-uuid"}), "not a valid pk for testapp.tag"),
        (envelope("taskops.model", {"model": "testapp.country", "pk": "F\x00"}), "must not contain NUL"),
        (envelope("taskops.models", {"model": "testapp.book", "pks": [1, None]}), "must be an int or a str"),
        (envelope("taskops.models", {"model": "testapp.book", "pks": 1}), "expected {'model': str, 'pks'"),
        (envelope("datetime", "yesterday"), "bad datetime value 'yesterday'"),
        (envelope("datetime", 5), "bad datetime value 5: expected a string"),
        (envelope("date", "2024-13-01"), "bad date value"),
        (envelope("time", "25:00"), "bad time value"),
        (envelope("decimal", "one"), "bad decimal value 'one'"),
        (envelope("uuid", {"hex": "zz"}), "bad uuid value"),
        (envelope("uuid", {"int": 5}), "bad uuid value"),
        (envelope("base64", "***"), "bad base64 value"),
        (envelope("bytes", 1), "bad bytes value"),
        (envelope("taskops.invalid", "made up"), "made up"),
    ],
)
def test_refused_values_become_invalid_and_strict_decode_names_the_place(payload: Any, error: str) -> None:
    text = json.dumps([["ok", {"inner": payload}], {}, {}])

    value = codec.loads(text)

    assert isinstance(value[0][1]["inner"], Invalid)
    assert error in value[0][1]["inner"].error
    with pytest.raises(CodecError, match=r"^\$\[0\]\[1\]\.inner: ") as raised:
        codec.decode(text)
    assert error in str(raised.value)


@override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.tag"]})
def test_disallowed_model_is_refused() -> None:
    value = codec.loads(json.dumps(envelope("taskops.model", {"model": "testapp.book", "pk": 1})))

    assert value == Invalid("taskops.model: model 'testapp.book' is not allowed (TASKOPS['ALLOWED_MODELS'])")


def test_kombu_values_decode() -> None:
    at = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    values = [at, at.date(), at.time(), decimal.Decimal("-0.10"), uuid.UUID(int=5), b"raw", b"\xff\x00"]

    assert codec.decode(send(values)) == values


def test_path_through_an_attrs_object_names_the_field() -> None:
    data = {"class": "tests.codec.Point", "data": {"x": envelope("datetime", "bad"), "y": 1}}
    text = json.dumps([[envelope("taskops.attrs", data)], {}, {}])

    with pytest.raises(CodecError, match=r"^\$\[0\]\[0\]\.data\.x: bad datetime value"):
        codec.decode(text)


def test_not_json_raises_codec_error_in_strict_mode_only() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        codec.loads("[1,")
    with pytest.raises(CodecError, match="not JSON"):
        codec.decode("[1,")
    with pytest.raises(CodecError, match="not JSON"):
        codec.decode(b"\xff\xfe")


# --- limits ---------------------------------------------------------------------------


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@override_settings(TASKOPS={"MAX_DEPTH": 8})
def test_too_deep_subtrees_become_invalid_where_they_are() -> None:
    text = json.dumps([[nested(3), {"deep": nested(10)}], {}, {}])

    value = codec.loads(text)

    assert value[0][0] == nested(3)
    assert value[0][1]["deep"] == nested(5, Invalid("nested more than 8 levels deep (TASKOPS['MAX_DEPTH'])"))
    with pytest.raises(CodecError, match=r"^\$\[0\]\[1\]\.deep\[0\]\[0\]\[0\]\[0\]\[0\]: nested more than 8"):
        codec.decode(text)


def test_deeper_than_the_json_parser_can_go_still_decodes() -> None:
    text = json.dumps([["a"], {}, {}])
    text = text.replace('"a"', "[" * 20_000 + "]" * 20_000)

    value = codec.loads(text)

    assert value[1:] == [{}, {}]
    with pytest.raises(CodecError, match="nested more than 32 levels deep"):
        codec.decode(text)


def test_unclosed_deep_text_is_not_json() -> None:
    with pytest.raises(CodecError, match="not JSON"):
        codec.decode("[" * 5000)


@override_settings(TASKOPS={"MAX_NODES": 100})
def test_too_many_values_fail_the_task_keeping_the_message_shape() -> None:
    text = json.dumps([list(range(200)), {}, {}])

    value = codec.loads(text)

    assert value == [[Invalid("204 values, more than 100 (TASKOPS['MAX_NODES'])")], {}, {}]
    assert codec.loads(json.dumps([list(range(90)), {}, {}]))[0] == list(range(90))
    assert codec.loads(json.dumps({"a": list(range(200))})) == Invalid(
        "202 values, more than 100 (TASKOPS['MAX_NODES'])"
    )


@override_settings(TASKOPS={"MAX_BYTES": 1000})
def test_a_body_over_max_bytes_is_refused_unparsed() -> None:
    text = json.dumps([["x" * 2000], {}, {}])
    # Not even JSON: a body that long is never scanned nor parsed.
    broken = ("[" + "9," * 1000).encode()
    an_object = json.dumps({"a": "x" * 2000})

    def refused(length: int) -> Invalid:
        return Invalid(f"a body of {length} bytes, more than 1000 (TASKOPS['MAX_BYTES'])")

    assert codec.loads(text) == [[refused(len(text))], {}, {}]
    assert codec.loads(broken) == [[refused(len(broken))], {}, {}]
    assert codec.loads(memoryview(text.encode())) == [[refused(len(text))], {}, {}]
    assert codec.loads(an_object) == refused(len(an_object))
    assert codec.loads(json.dumps([["x" * 900], {}, {}]))[0] == ["x" * 900]


@override_settings(TASKOPS={"MAX_NODES": 10})
def test_value_count_ignores_brackets_and_commas_inside_strings() -> None:
    text = json.dumps([["[,],{,}" * 50, [], {}], {}, {}])

    assert codec.decode(text)[0][0].startswith("[,]")


@override_settings(TASKOPS={"MAX_REFS": 3})
def test_too_many_refs_are_refused() -> None:
    one = envelope("taskops.model", {"model": "testapp.book", "pk": 1})
    some = envelope("taskops.models", {"model": "testapp.book", "pks": [2, 3]})

    value = codec.loads(json.dumps([one, some, one]))

    assert value[:2] == [RefPlaceholder(ModelRef("testapp.book", 1)), RefListPlaceholder("testapp.book", (2, 3))]
    assert value[2] == Invalid("more than 3 model references in one message (TASKOPS['MAX_REFS'])")


# --- the attrs registry ----------------------------------------------------------------


def test_register_rejects_what_is_not_an_attrs_class() -> None:
    with pytest.raises(TypeError, match="not an attrs class"):
        taskops.register(dict)


def test_a_name_registered_twice_is_refused_both_ways() -> None:
    @attrs.frozen
    class First:
        a: int

    @attrs.frozen
    class Second:
        a: int

    taskops.register(name="tests.twice")(First)
    taskops.register(name="tests.twice")(Second)
    try:
        assert codec.attrs_registry.conflicts["tests.twice"] == [First, Second]
        with pytest.raises(EncodeError, match=r"'tests\.twice' is registered twice"):
            send(First(1))
        text = json.dumps(envelope("taskops.attrs", {"class": "tests.twice", "data": {"a": 1}}))
        assert codec.loads(text) == Invalid("taskops.attrs: class 'tests.twice' is registered twice")
    finally:
        codec.attrs_registry.unregister("tests.twice")
    assert "tests.twice" not in codec.attrs_registry.conflicts


def test_classes_named_by_task_annotations_are_registered() -> None:
    from tests.celery_app import app

    @attrs.frozen
    class Annotated:
        a: int

    @attrs.frozen
    class InsideList:
        a: int

    def run(first: Annotated, others: list[InsideList] | None = None) -> None: ...

    run.__annotations__ = {"first": Annotated, "others": list[InsideList] | None, "return": None}
    task = app.task(name="tests.codec.annotated", shared=False, lazy=False)(run)
    try:
        assert codec.attrs_registry.lookup(codec.default_attrs_name(Annotated)) is Annotated
        assert codec.attrs_registry.lookup(codec.default_attrs_name(InsideList)) is InsideList
        assert codec.resolve(receive(send([Annotated(1), [InsideList(2)]]))) == [Annotated(1), [InsideList(2)]]
    finally:
        app.tasks.unregister(task.name)
        codec.attrs_registry.unregister(codec.default_attrs_name(Annotated))
        codec.attrs_registry.unregister(codec.default_attrs_name(InsideList))


def test_annotations_naming_a_later_class_are_read_when_that_class_is_needed() -> None:
    namespace: dict[str, Any] = {}
    exec("def run(item: 'Later') -> None: ...", namespace)
    registry = codec.AttrsRegistry()
    registry.note_annotations(namespace["run"])
    assert registry.pending_annotations == [namespace["run"]]

    @attrs.frozen
    class Later:
        a: int

    namespace["Later"] = Later

    assert registry.lookup(codec.default_attrs_name(Later)) is Later
    assert registry.pending_annotations == []


def test_configured_classes_are_registered_and_bad_paths_fail_loudly() -> None:
    codec.register_configured_classes(["tests.wire.test_codec.Point", 5])
    assert codec.attrs_registry.name_of(Point) == "tests.codec.Point"

    with pytest.raises(ImproperlyConfigured, match=r"'tests\.wire\.test_codec\.Missing'"):
        codec.register_configured_classes(["tests.wire.test_codec.Missing"])
    with pytest.raises(ImproperlyConfigured, match="not an attrs class"):
        codec.register_configured_classes(["tests.wire.test_codec.envelope"])


def test_question_round_trips_through_the_thread_report() -> None:
    from tests.testapp.reports import ThreadReport

    question = Question.objects.create(title="q", body="b")
    report = ThreadReport(question=question, requested_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), note="n")

    assert codec.resolve(receive(send(report))) == report
