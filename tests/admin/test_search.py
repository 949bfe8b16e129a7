"""The changelist's search finds every id a page shows, and any object by its pk, however it is typed."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client

from taskops.admin.search import parse_search, search_dispatches, unquote
from taskops.models import Dispatch
from tests.admin.helpers import CHANGELIST, change_url, result_task_ids
from tests.factories import make_dispatch
from tests.testapp.models import Answer, Document, Question, Tag

pytestmark = pytest.mark.django_db


def found(client: Client, term: str) -> set[str]:
    return set(result_task_ids(client.get(CHANGELIST, {"q": term}).content.decode()))


def short(*made: Dispatch) -> set[str]:
    return {dispatch.task_id[:8] for dispatch in made}


def test_the_short_id_a_row_shows_finds_it(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question, task_id="3f2a9c1b-5d1e-4c55-9a0f-1d2e3f4a5b6c")
    make_dispatch(question, task_id="3f2a9c1c-0000-4000-8000-000000000000")

    assert found(admin_client, "3f2a9c1b") == short(dispatch)  # what the row shows
    assert found(admin_client, "3F2A9C1B-5D1E") == short(dispatch)  # as typed from elsewhere
    assert found(admin_client, dispatch.task_id) == short(dispatch)
    assert found(admin_client, "3f2a9c1") == set()  # under 8 characters: whole ids only


def test_group_id_is_searchable_and_shown(admin_client: Client, question: Question) -> None:
    group_id = "b7e1c2d3-aaaa-4bbb-8ccc-123456789abc"
    grouped = [make_dispatch(question, group_id=group_id) for _ in range(2)]
    alone = make_dispatch(question)

    html = admin_client.get(change_url(grouped[0])).content.decode()

    assert found(admin_client, group_id) == short(*grouped)
    assert found(admin_client, group_id[:8]) == short(*grouped)
    assert alone.task_id[:8] not in found(admin_client, group_id)
    assert f"<th>Group id</th><td><code>{group_id}</code>" in html
    assert f'href="{CHANGELIST}?q={group_id}"' in html
    assert "Group id" not in admin_client.get(change_url(alone)).content.decode()


@pytest.mark.parametrize("path", ["a b", "x/y:z", 'say "hi" \\ there', " padded ", "http://h/p?q=1"])
def test_char_pks_with_any_characters_are_found_quoted(admin_client: Client, path: str) -> None:
    document = Document.objects.create(path=path)
    dispatch = make_dispatch(document)
    make_dispatch(Document.objects.create(path="other"))
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'

    assert found(admin_client, f"testapp.document:{quoted}") == short(dispatch)
    assert found(admin_client, quoted) == short(dispatch)  # a bare pk, quoted


@pytest.mark.parametrize("path", ["a b", "x/y:z", "http://h/p?q=1"])
def test_the_rest_of_an_object_term_is_its_pk(admin_client: Client, path: str) -> None:
    dispatch = make_dispatch(Document.objects.create(path=path))

    assert found(admin_client, f"testapp.document:{path}") == short(dispatch)


def test_pks_are_compared_in_their_models_form(admin_client: Client, question: Question) -> None:
    tag = Tag.objects.create(name="urgent")
    by_tag = make_dispatch(tag)
    by_question = make_dispatch(question)

    assert found(admin_client, f"testapp.tag:{str(tag.pk).upper()}") == short(by_tag)
    assert found(admin_client, f"testapp.tag:{tag.pk.hex}") == short(by_tag)
    assert found(admin_client, f"testapp.tag:{{{tag.pk}}}") == short(by_tag)  # braces, as uuid.UUID takes
    assert found(admin_client, f"testapp.question:0{question.pk}") == short(by_question)


def test_a_matched_ref_is_never_hidden_behind_more(admin_client: Client) -> None:
    answers = [Answer.objects.create(question=Question.objects.create(title=f"q{i}"), body="b") for i in range(5)]
    make_dispatch(*answers)
    wanted = answers[4]

    html = admin_client.get(CHANGELIST, {"q": f"testapp.answer:{wanted.pk}"}).content.decode()
    plain = admin_client.get(CHANGELIST).content.decode()

    refs = re.findall(r'<span class="(taskops-ref-line[^"]*)"><span [^>]*><a href="([^"]+)"', html)
    assert refs[0] == ("taskops-ref-line taskops-match", change_url(wanted))  # first, and marked
    assert [css for css, _url in refs[1:]] == ["taskops-ref-line", "taskops-ref-line"]
    assert "+2 more" in html
    assert change_url(wanted) not in plain  # without the search it was hidden behind "+2 more"


def test_a_bare_pk_marks_every_matching_ref(admin_client: Client, question: Question) -> None:
    make_dispatch(question, Answer.objects.create(question=question, body="b"))

    html = admin_client.get(CHANGELIST, {"q": str(question.pk)}).content.decode()

    marked = re.findall(r'<span class="taskops-ref-line taskops-match"><span [^>]*><a href="([^"]+)"', html)
    assert change_url(question) in marked


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("nosuch.model:1", "There is no model nosuch.model."),
        ('testapp.document:"unclosed', "The pk of testapp.document has a quote that is not closed."),
        ('"unclosed', "The search term has a quote that is not closed."),
        ("testapp.question:abc", "“abc” is not a pk that testapp.question can have."),
    ],
)
def test_a_term_that_cannot_match_says_why(admin_client: Client, question: Question, term: str, message: str) -> None:
    make_dispatch(question)

    response = admin_client.get(CHANGELIST, {"q": term})

    assert result_task_ids(response.content.decode()) == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == [message]


def test_unquote() -> None:
    assert unquote('"a \\"b\\" \\\\ c"') == 'a "b" \\ c'
    assert unquote('"a" b') is None
    assert unquote("plain") is None


def test_search_without_a_request_finds_the_same(question: Question) -> None:
    dispatch = make_dispatch(question)

    assert list(search_dispatches(Dispatch.objects.all(), f"testapp.question:{question.pk}")) == [dispatch]
    assert parse_search("  ").text == ""
    assert parse_search("a\x00b").problem


def test_id_prefixes_are_served_by_an_index(question: Question) -> None:
    make_dispatch(question, group_id="b7e1c2d3-aaaa-4bbb-8ccc-123456789abc")
    queryset = search_dispatches(Dispatch.objects.all(), "b7e1c2d3")
    with connection.cursor() as cursor:
        indexed = {
            name: info["columns"]
            for name, info in connection.introspection.get_constraints(cursor, Dispatch._meta.db_table).items()
            if info["index"] or info["unique"]
        }
    assert ["group_id"] in indexed.values()
    assert ["task_id"] in indexed.values()
    if connection.vendor == "postgresql":  # LIKE 'x%' needs a pattern index unless the collation is C
        with connection.cursor() as cursor:
            # Only bitmap index scans left: each clause must find an index of its own, or fall back to a scan.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
            plan = queryset.order_by().explain()
        assert re.search(r"Index Cond: \(\(\(task_id\)::text ~>=~ 'b7e1c2d3'", plan)
        assert re.search(r"Index Cond: \(\(\(group_id\)::text ~>=~ 'b7e1c2d3'", plan)
    else:
        assert "LIKE" in str(queryset.query)


def test_a_random_uuid_task_id_prefix(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question, task_id=str(uuid.uuid4()))

    assert found(admin_client, dispatch.task_id[:8]) == short(dispatch)
