"""What a re-dispatch costs against plain ``delay``: the same objects, the same task, one run.

    python -m bench.redispatch [--objects 10000] [--rounds 3]

(a) plain: fetch the objects (one query) and ``flag_comment.delay(obj)`` each;
(b) re-dispatch: ``taskops.redispatch.for_objects`` (every check: the task,
    the model, permissions, the signature, that every object exists) and
    ``submit`` (the audit row and its items, then publishing in batches with
    the rows fetched once per batch), at the call (the background threshold
    raised above the selection).
Both with recording on, timed until the records are written too; rounds
interleaved, medians compared. Target: (b) / (a) <= 1.5, judged ``ok`` or
``MISSED`` on the last line as the other benches do (and the exit code is 1
when missed). Uses the recording bench's database and queue (``bench.settings``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from bench.recording import flush_records, purge, reset_tables, setup
from bench.stacks import stack_name

#: Re-dispatch time over plain ``delay`` time, at most.
TARGET = 1.5

SETTINGS: dict[str, Any] = {
    "RECORDING": True,
    "REDISPATCH_TASKS": ["demo.tasks.flag_comment"],
    "REDISPATCH_BACKGROUND_OVER": 10**7,
    "REDISPATCH_MAX_CALLS": 10**7,
}


def comments(count: int) -> list[int]:
    from demo.models import Answer, Comment, Question

    answer = Answer.objects.create(question=Question.objects.create(title="Bench", body="b"), body="a")
    made = Comment.objects.bulk_create(Comment(answer=answer, body=f"comment {i}") for i in range(count))
    return [comment.pk for comment in made]


def plain_round(pks: list[int]) -> float:
    from demo.models import Comment
    from demo.tasks import flag_comment

    started = time.perf_counter()
    for comment in Comment.objects.filter(pk__in=pks).order_by("pk"):
        flag_comment.delay(comment)
    flush_records()
    return time.perf_counter() - started


def redispatch_round(pks: list[int], user: Any) -> float:
    from demo.tasks import flag_comment
    from taskops.redispatch import for_objects, submit

    started = time.perf_counter()
    draft = for_objects(user=user, task_name=flag_comment.name, model_label="demo.comment", pks=pks, reason="bench")
    redispatch = submit(draft)
    flush_records()
    elapsed = time.perf_counter() - started
    if redispatch.published != len(pks):
        raise RuntimeError(f"published {redispatch.published} of {len(pks)}")
    return elapsed


def verdict_line(stack: str, redispatch: float, plain: float, objects: int) -> str:
    """The verdict, in the other benches' manner::

    redispatch  pg+redis           10,000 objects: re-dispatch 1.21 s / plain 0.98 s = 1.23x  target <= 1.50x  ok
    """
    ratio = redispatch / plain
    judged = f"target <= {TARGET:.2f}x  {'ok' if ratio <= TARGET else 'MISSED'}"
    figures = f"{objects:,} objects: re-dispatch {redispatch:,.2f} s / plain {plain:,.2f} s"
    return f"{'redispatch':<11} {stack:<18} {figures} = {ratio:.2f}x  {judged}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redispatch", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import override_settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    print(f"re-dispatch bench: {connection.vendor} + {settings.CELERY_BROKER_URL.split(':')[0]}")
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_superuser": True, "is_staff": True})
    times: dict[str, list[float]] = {"plain": [], "redispatch": []}
    with override_settings(TASKOPS=SETTINGS):
        pks = comments(options.objects)
        redispatch_round(pks[:50], user)  # warm up
        plain_round(pks[:50])
        try:
            for index in range(options.rounds):
                order = ("plain", "redispatch") if index % 2 == 0 else ("redispatch", "plain")
                for kind in order:
                    purge(queue)
                    took = plain_round(pks) if kind == "plain" else redispatch_round(pks, user)
                    times[kind].append(took)
        finally:
            purge(queue)
            reset_tables()
    plain, again = statistics.median(times["plain"]), statistics.median(times["redispatch"])
    n = options.objects
    print(
        f"re-dispatch of {n} objects (checks + publish + records), median: {again / n * 1e6:.0f} us each; "
        f"plain delay of the same {n}: {plain / n * 1e6:.0f} us each"
    )
    line = verdict_line(stack_name(connection.vendor, settings.CELERY_BROKER_URL), again, plain, n)
    print(line, flush=True)
    return 1 if "MISSED" in line else 0


if __name__ == "__main__":
    sys.exit(main())
