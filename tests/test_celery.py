"""The taskops Task base: refs resolved before the body, on_missing, results, every way of calling."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import attrs
import pytest
from celery import group, states
from celery.exceptions import Ignore
from celery.result import AsyncResult as CeleryAsyncResult
from django_celery_results.models import TaskResult
from kombu.serialization import dumps as kombu_dumps
from kombu.serialization import loads as kombu_loads

import taskops
from taskops.celery import SKIPPED, AsyncResult, MissingObjectError, Task, TaskSkipped
from taskops.signals import task_skipped
from taskops.wire import CodecError
from tests.celery_app import app
from tests.testapp.models import Answer, Book, Country, Question, Tag
from tests.testapp.reports import ThreadReport
from tests.testapp.tasks import add, best_answer, count_words, moderate_answer, rebuild_summary, summarize_thread

#: ``add`` as the taskops Task it is (celery-types only knows Celery's Task).
add_task = cast(Task, add)

pytestmark = pytest.mark.django_db


@taskops.register(name="tests.task.Bundle")
@attrs.frozen
class Bundle:
    countries: list[Country]
    label: str


def message(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) as the worker has them: encoded by kombu, decoded by the codec."""
    content_type, encoding, data = kombu_dumps([list(args), kwargs, {}], serializer="json")
    decoded = kombu_loads(data, content_type, encoding, accept=[content_type])
    return tuple(decoded[0]), decoded[1]


def forged(*args: Any) -> tuple[Any, ...]:
    """Hand-made JSON arguments, decoded as the worker would."""
    decoded = kombu_loads(json.dumps([list(args), {}, {}]), "application/json", "utf-8", accept=["application/json"])
    return tuple(decoded[0])


@pytest.fixture
def question() -> Question:
    return Question.objects.create(title="Q", body="question body")


@pytest.fixture
def eager() -> Iterator[None]:
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def test_the_task_class_of_every_task_is_taskops() -> None:
    assert isinstance(rebuild_summary, Task)
    assert isinstance(add, Task)


def test_one_query_per_model_class_for_100_refs_of_3_models(django_assert_num_queries: Any) -> None:
    books = [Book.objects.create(title=f"b{i}") for i in range(40)]
    tags = [Tag.objects.create(name=f"t{i}") for i in range(30)]
    countries = [Country.objects.create(code=f"{chr(65 + i // 26)}{chr(65 + i % 26)}", name="c") for i in range(30)]
    args, kwargs = message(books[::-1], tags=Tag.objects.order_by("name"), bundle=Bundle(countries, "all"))

    with django_assert_num_queries(3):
        new_args, new_kwargs, objects = add_task.resolve_arguments(args, kwargs)

    assert len(objects) == 100
    assert new_args == (books[::-1],)
    assert new_kwargs == {"tags": sorted(tags, key=lambda t: t.name), "bundle": Bundle(countries, "all")}


def test_the_body_gets_fresh_instances_in_the_order_sent(question: Question) -> None:
    answers = [Answer.objects.create(question=question, body=f"a{i}", score=i) for i in range(3)]
    args, kwargs = message(question, answers[::-1])
    Answer.objects.filter(pk=answers[0].pk).update(body="edited after dispatch")

    summary = rebuild_summary(*args, **kwargs)

    assert summary.splitlines()[1:] == ["- (2) a2", "- (1) a1", "- (0) edited after dispatch"]


def test_attrs_argument_is_built_with_its_ref_and_datetime(question: Question) -> None:
    at = dt.datetime(2024, 2, 3, 4, 5, tzinfo=dt.UTC)
    args, kwargs = message(ThreadReport(question=question, requested_at=at, top_n=0, note="n"))

    assert summarize_thread(*args, **kwargs)["requested_at"] == at.isoformat()


def test_missing_row_fails_by_default_naming_model_and_pk(question: Question) -> None:
    args, kwargs = message(question, [])
    question_pk = question.pk
    question.delete()

    with pytest.raises(
        MissingObjectError, match=rf"tests\.testapp\.tasks\.rebuild_summary: .* testapp\.question:{question_pk}$"
    ):
        rebuild_summary(*args, **kwargs)


def test_missing_row_skips_with_state_log_and_signal(question: Question, caplog: pytest.LogCaptureFixture) -> None:
    answer = Answer.objects.create(question=question, body="gone soon")
    args, kwargs = message(answer)
    answer_pk = answer.pk
    answer.delete()
    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    task_skipped.connect(receiver)
    task_id = str(uuid.uuid4())
    moderate_answer.push_request(id=task_id, is_eager=False)
    try:
        with pytest.raises(Ignore):  # Celery's way to stop a task without a result of its own
            moderate_answer(*args, **kwargs)
    finally:
        moderate_answer.pop_request()
        task_skipped.disconnect(receiver)

    stored = TaskResult.objects.get(task_id=task_id)
    # What Celery's readers understand: revoked, with the reason in a TaskSkipped.
    assert stored.status == states.REVOKED
    assert json.loads(stored.result)["exc_type"] == "TaskSkipped"
    assert f"testapp.answer:{answer_pk}" in json.loads(stored.result)["exc_message"][0]
    assert (
        "skipped: tests.testapp.tasks.moderate_answer: referenced object(s) no longer exist: "
        f"testapp.answer:{answer_pk}" in caplog.text
    )
    assert [(s["task_id"], s["task"]) for s in seen] == [(task_id, moderate_answer)]
    result = moderate_answer.AsyncResult(task_id)
    assert result.ready()
    with pytest.raises(TaskSkipped, match=f"testapp.answer:{answer_pk}"):
        result.get(timeout=1)
    with pytest.raises(TaskSkipped, match=f"testapp.answer:{answer_pk}"):
        CeleryAsyncResult(task_id, app=moderate_answer.app).get(timeout=1)  # Celery's own handle ends too


def test_a_result_stored_skipped_by_an_earlier_version_still_ends_the_wait(question: Question) -> None:
    task_id = str(uuid.uuid4())
    moderate_answer.backend.store_result(task_id, {"reason": "gone"}, SKIPPED)

    with pytest.raises(TaskSkipped, match="gone"):
        moderate_answer.AsyncResult(task_id).get(timeout=5)


def test_refused_argument_fails_with_codec_error_naming_the_path(question: Question) -> None:
    report = {"question": {"__type__": "taskops.model", "__value__": {"model": "auth.nothing", "pk": 1}}}
    args = forged(
        {"__type__": "taskops.attrs", "__value__": {"class": "tests.testapp.reports.ThreadReport", "data": report}}
    )

    with pytest.raises(CodecError, match=r"^args\[0\]\.data\.question: taskops\.model: model 'auth\.nothing'"):
        summarize_thread(*args)


def test_unregistered_class_fails_with_codec_error() -> None:
    args = forged({"__type__": "taskops.attrs", "__value__": {"class": "subprocess.Popen", "data": {"args": "ls"}}})

    with pytest.raises(CodecError, match=r"^args\[0\]: taskops\.attrs: class 'subprocess\.Popen' is not registered"):
        add(*args)


def test_attrs_data_that_does_not_fit_the_class_is_a_codec_error() -> None:
    args = forged({"__type__": "taskops.attrs", "__value__": {"class": "tests.task.Bundle", "data": {"label": "x"}}})

    with pytest.raises(CodecError, match=r"^args\[0\]: cannot build tests\.task\.Bundle: required field missing"):
        add(*args)


@pytest.mark.parametrize(("option", "value"), [("on_missing", "ignore"), ("on_stale", "maybe")])
def test_unknown_policy_value_fails_at_task_definition(option: str, value: str) -> None:
    def body() -> None: ...

    with pytest.raises(ValueError, match=rf"task tests\.bad_policy: {option} must be one of .* got '{value}'"):
        app.task(name="tests.bad_policy", shared=False, lazy=False, **{option: value})(body)  # type: ignore[call-overload]
    assert "tests.bad_policy" not in app.tasks


@pytest.mark.parametrize("value", [-1, "soon", True, float("inf"), None])
def test_a_stale_retry_countdown_that_is_no_seconds_fails_at_task_definition(value: Any) -> None:
    def body() -> None: ...

    with pytest.raises(ValueError, match=r"stale_retry_countdown must be a number of seconds, 0 or more, got"):
        app.task(name="tests.bad_countdown", shared=False, lazy=False, stale_retry_countdown=value)(body)
    assert "tests.bad_countdown" not in app.tasks


def test_direct_call_apply_and_always_eager_all_work(question: Question, eager: None) -> None:
    answers = [Answer.objects.create(question=question, body="x", score=1)]

    assert rebuild_summary(question, answers).startswith("1 answer(s) to: Q")
    assert rebuild_summary.apply(args=(question, answers)).get().startswith("1 answer(s) to: Q")
    assert rebuild_summary.delay(question, answers).get().startswith("1 answer(s) to: Q")
    assert count_words.delay("testapp.question", question.pk).get() == 2


def test_older_styles_pass_through_unchanged(question: Question) -> None:
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    as_dict = attrs.asdict(ThreadReport(question=question, requested_at=at), recurse=False)

    assert count_words(*message("testapp.question", question.pk)[0]) == 2
    assert add(*message(2, 3)[0]) == 5
    assert add_task.resolve_arguments(*message(as_dict))[0] == (as_dict,)


def test_results_come_back_as_instances_fetched_by_the_reader(question: Question) -> None:
    best = Answer.objects.create(question=question, body="best", score=5)
    task_id = str(uuid.uuid4())
    best_answer.backend.store_result(task_id, best, "SUCCESS")
    Answer.objects.filter(pk=best.pk).update(body="changed since")

    result = best_answer.AsyncResult(task_id)

    assert isinstance(result, AsyncResult)
    assert result.get(timeout=1) == best
    assert cast(Answer, result.result).body == "changed since"


def test_a_result_whose_row_is_gone_raises_missing(question: Question) -> None:
    answer = Answer.objects.create(question=question, body="b")
    task_id = str(uuid.uuid4())
    best_answer.backend.store_result(task_id, [answer], "SUCCESS")
    answer_pk = answer.pk
    answer.delete()

    with pytest.raises(MissingObjectError, match=rf"^result: .*testapp\.answer:{answer_pk}"):
        best_answer.AsyncResult(task_id).get(timeout=1)


def test_group_children_resolve_too() -> None:
    frozen = group(add.s(1, 2), add.s(3, 4)).freeze()

    assert all(isinstance(child, AsyncResult) for child in frozen.results)  # type: ignore[attr-defined]
