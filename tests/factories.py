"""Dispatch and ObjectRef rows made directly, the way the recorder writes them.

The arguments are stored as the exact encoded JSON the codec produces, with
the ``taskops.model`` / ``taskops.models`` / ``taskops.attrs`` envelopes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.utils import timezone

from taskops.models import Dispatch, Drift, ObjectRef, State
from taskops.wire import json_pk

WAITING = {State.PENDING, State.RECEIVED, State.RETRY}


def model_envelope(instance: Model) -> dict[str, Any]:
    return {"__type__": "taskops.model", "__value__": {"model": instance._meta.label_lower, "pk": json_pk(instance.pk)}}


def models_envelope(instances: Sequence[Model]) -> dict[str, Any]:
    return {
        "__type__": "taskops.models",
        "__value__": {"model": instances[0]._meta.label_lower, "pks": [json_pk(obj.pk) for obj in instances]},
    }


def attrs_envelope(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"__type__": "taskops.attrs", "__value__": {"class": name, "data": data}}


def make_dispatch(
    *objects: Model,
    task_name: str = "tests.testapp.tasks.moderate_answer",
    state: str = State.SUCCESS,
    drift: str | None = None,
    changed_fields: Iterable[str] = (),
    values: dict[str, Any] | None = None,
    likely_race: bool = False,
    enqueued_at: dt.datetime | None = None,
    lag: dt.timedelta | None = dt.timedelta(milliseconds=250),
    args: Any = None,
    kwargs: Any = None,
    **fields: Any,
) -> Dispatch:
    """A dispatch whose positional args are ``objects`` (one ref each), all refs with ``drift``.

    ``drift`` defaults to unchanged, or to pending for work that has not started;
    without objects too, as the recorder writes it (nothing could be stale).
    """
    if drift is None:
        drift = Drift.PENDING if state in WAITING else Drift.UNCHANGED
    enqueued = enqueued_at or timezone.now() - dt.timedelta(seconds=30)
    started = enqueued + lag if lag is not None and state not in WAITING else None
    if started is None:
        lag = None
    finished = started + dt.timedelta(milliseconds=120) if started and state != State.STARTED else None
    dispatch = Dispatch.objects.create(
        task_id=fields.pop("task_id", None) or str(uuid.uuid4()),
        task_name=task_name,
        state=state,
        args=json.dumps(args if args is not None else [model_envelope(obj) for obj in objects]),
        kwargs=json.dumps(kwargs if kwargs is not None else {}),
        queue=fields.pop("queue", "celery"),
        enqueued_at=enqueued,
        received_at=fields.pop("received_at", started),
        started_at=started,
        finished_at=finished,
        lag=lag,
        runtime=finished - started if finished and started else None,
        worker=fields.pop("worker", "celery@web-1" if started else ""),
        drift=drift,
        likely_race=likely_race,
        ref_count=fields.pop("ref_count", len(objects)),
        **fields,
    )
    for index, obj in enumerate(objects):
        add_ref(
            dispatch,
            obj,
            argument=f"args[{index}]",
            drift=drift,
            changed_fields=list(changed_fields) if drift == Drift.CHANGED else [],
            values=values or {},
            likely_race=likely_race,
        )
    return dispatch


def add_ref(dispatch: Dispatch, obj: Model, **fields: Any) -> ObjectRef:
    """One ``ObjectRef`` to ``obj``, its repr taken now as the recorder would."""
    fields.setdefault("drift", Drift.UNCHANGED)
    fields.setdefault("checked_at", dispatch.started_at)
    return ObjectRef.objects.create(
        dispatch=dispatch,
        content_type=ContentType.objects.get_for_model(obj),
        object_pk=str(obj.pk),
        object_repr=str(obj)[:200],
        **fields,
    )


def seed_showcase() -> dict[str, Any]:
    """A small, realistic set of questions, answers and dispatches (browser tests, screenshots)."""
    from tests.testapp.models import Answer, Comment, Question

    now = timezone.now()
    q1 = Question.objects.create(title="Why does my task see stale data?", body="The worker reads the row too early.")
    q2 = Question.objects.create(title="How do I retry only failed tasks?", body="Retries should keep their arguments.")
    q3 = Question.objects.create(title="Is pickle safe for task arguments?", body="Short answer: no.")
    a1 = Answer.objects.create(question=q1, body="Dispatch after commit with transaction.on_commit.", score=7)
    a2 = Answer.objects.create(question=q1, body="Or pass the id and fetch it fresh in the task.", score=3)
    a3 = Answer.objects.create(question=q2, body="Use the admin's re-dispatch action.", score=2)
    c1 = Comment.objects.create(answer=a1, body="This fixed it for us, thanks!")
    minutes = dt.timedelta(minutes=1)
    changed = make_dispatch(
        q1,
        task_name="tests.testapp.tasks.rebuild_summary",
        args=[model_envelope(q1), models_envelope([a1, a2])],
        drift=Drift.CHANGED,
        changed_fields=["body", "updated_at"],
        values={"body": "The worker reads the row."},
        enqueued_at=now - 3 * minutes,
        lag=dt.timedelta(seconds=42),
        in_transaction=True,
        ref_count=3,
    )
    add_ref(changed, a1, argument="args[1][0]")
    add_ref(changed, a2, argument="args[1][1]", drift=Drift.CHANGED, changed_fields=["score"])
    made = [
        changed,
        make_dispatch(a1, enqueued_at=now - 9 * minutes, lag=dt.timedelta(milliseconds=180)),
        make_dispatch(a2, enqueued_at=now - 8 * minutes, lag=dt.timedelta(seconds=2)),
        make_dispatch(a3, drift=Drift.CHANGED, changed_fields=["status"], enqueued_at=now - 7 * minutes),
        make_dispatch(
            q2,
            task_name="tests.testapp.tasks.notify_followers",
            kwargs={"message": "New answer"},
            enqueued_at=now - 6 * minutes,
            lag=dt.timedelta(seconds=5),
        ),
        make_dispatch(
            c1,
            task_name="tests.testapp.tasks.flag_comment",
            state=State.FAILURE,
            exception="SMTPServerDisconnected('Connection unexpectedly closed')",
            enqueued_at=now - 5 * minutes,
        ),
        make_dispatch(
            q3, task_name="tests.testapp.tasks.notify_followers", state=State.PENDING, enqueued_at=now - 4 * minutes
        ),
        make_dispatch(
            q1,
            task_name="tests.testapp.tasks.summarize_thread",
            args=[
                attrs_envelope(
                    "tests.testapp.reports.ThreadReport",
                    {
                        "question": model_envelope(q1),
                        "requested_at": {"__type__": "datetime", "__value__": (now - 2 * minutes).isoformat()},
                        "top_n": 3,
                        "note": "weekly digest",
                    },
                )
            ],
            drift=Drift.MISSING,
            likely_race=True,
            enqueued_at=now - 2 * minutes,
            lag=dt.timedelta(seconds=12),
        ),
        make_dispatch(
            q2, task_name="tests.testapp.tasks.rebuild_summary", state=State.STARTED, enqueued_at=now - minutes
        ),
        # Scheduled (an ETA ahead), and one whose arguments referenced no object.
        make_dispatch(
            q2,
            task_name="tests.testapp.tasks.notify_followers",
            state=State.PENDING,
            enqueued_at=now - 2 * minutes,
            eta=now + 10 * minutes,
        ),
        make_dispatch(
            task_name="tests.testapp.tasks.count_words",
            args=["testapp.question", q3.pk],
            enqueued_at=now - 3 * minutes,
        ),
    ]
    return {"questions": [q1, q2, q3], "answers": [a1, a2, a3], "comments": [c1], "dispatches": made}
