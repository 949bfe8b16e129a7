"""A publishing process the fault tests drive: one JSON command a line on stdin, one JSON answer on stdout.

Run as ``python -m tests.faults.publisher`` with ``DATABASE_URL`` pointing
where the test wants (often through :mod:`tests.faults.proxy`). Commands:

- ``{"op": "question"}``: create a ``Question``, keep it; answers its pk;
- ``{"op": "publish", "n": N, "queue": Q}``: ``read_body.apply_async((question,), queue=Q)`` N times;
  answers the task ids, the slowest call in seconds and the errors raised;
- ``{"op": "flush", "seconds": T}``: ``taskops.recording.flush(T)`` and the counters;
- ``{"op": "quit"}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from taskops import recording  # noqa: E402  # after django.setup()
from tests.testapp.models import Question  # noqa: E402
from tests.testapp.tasks import read_body  # noqa: E402


def publish(question: Question | None, n: int, queue: str) -> dict[str, Any]:
    if question is None:
        raise RuntimeError("no question yet")
    ids, errors, slowest = [], [], 0.0
    for _ in range(n):
        started = time.monotonic()
        try:
            ids.append(read_body.apply_async((question,), queue=queue).id)
        except Exception as exc:  # noqa: BLE001  # reported to the test
            errors.append(repr(exc))
        slowest = max(slowest, time.monotonic() - started)
    return {"ids": ids, "slowest": slowest, "errors": errors}


def main() -> None:
    question: Question | None = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        answer: dict[str, Any]
        if op == "question":
            question = Question.objects.create(title="Fault", body="b")
            answer = {"pk": question.pk}
        elif op == "publish":
            answer = publish(question, command["n"], command["queue"])
        elif op == "flush":
            answer = {
                "flushed": recording.flush(command["seconds"]),
                "backlog": recording.backlog(),
                "dropped": recording.dropped_count(),
                "errors": recording.error_count(),
            }
        else:
            answer = {"bye": True}
        print(json.dumps(answer), flush=True)
        if op == "quit":
            return


if __name__ == "__main__":
    main()
