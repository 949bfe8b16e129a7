"""Encode + decode time of the taskops codec against plain kombu JSON.

The codec side sends what taskops users send (instances, a QuerySet's refs,
an attrs object); the plain side sends what they would send without it (the
same data as ids), through kombu's own ``dumps``/``loads``. Decoding stops
at placeholders, as in the worker's consumer loop: no database. Reported as
medians over many repeats, and as the median ratio codec / plain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from kombu.serialization import dumps as kombu_dumps
from kombu.serialization import loads as kombu_loads
from kombu.utils import json as kombu_json

from taskops import wire as codec

REPEATS = 1_000
ROUNDS = 15


def codec_round_trip(body: Any) -> Any:
    """With taskops: the json serializer taskops installs into kombu (its encoder and decoder)."""
    return codec.loads(codec.dumps(body))


def plain_round_trip(body: Any) -> Any:
    """Without taskops: kombu's own JSON functions."""
    return kombu_json.loads(kombu_json.dumps(body))


def check_same_as_the_worker(body: Any) -> None:
    """The timed path is the one the worker takes: kombu's registry decodes with the codec."""
    content_type, encoding, data = kombu_dumps(body, serializer="json")
    assert kombu_loads(data, content_type, encoding, accept=[content_type]) == codec_round_trip(body)


def mean_ns(function: Callable[[Any], Any], body: Any, repeats: int = REPEATS) -> float:
    """Mean time of one call over ``repeats`` calls."""
    start = time.perf_counter_ns()
    for _ in range(repeats):
        function(body)
    return (time.perf_counter_ns() - start) / repeats


def compare(body: Any, plain: Any, repeats: int = REPEATS, rounds: int = ROUNDS) -> tuple[float, float, float]:
    """Medians of codec time, plain time and their ratio; the two alternate round by round,
    so that a machine busy with something else weighs on both sides alike."""
    codec_times, plain_times, ratios = [], [], []
    for _ in range(rounds):
        codec_times.append(mean_ns(codec_round_trip, body, repeats))
        plain_times.append(mean_ns(plain_round_trip, plain, repeats))
        ratios.append(codec_times[-1] / plain_times[-1])
    return statistics.median(codec_times), statistics.median(plain_times), statistics.median(ratios)


def payloads() -> dict[str, tuple[Any, Any]]:
    """(codec body, equivalent plain body) per case."""
    from demo.models import Answer, Question
    from demo.reports import ThreadReport

    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    primitive = [[42, "hello", 3.5, True, None], {"note": "x" * 40, "ids": [1, 2, 3]}, {}]
    # Instances as the database returns them (Model.from_db), made without a query: encoding reads only the pk.
    question = Question.from_db("default", ["id", "title", "body"], [7, "q", "b"])
    answers = [Answer.from_db("default", ["id", "question_id", "body"], [100 + i, 7, "a"]) for i in range(8)]
    report = ThreadReport(question=question, requested_at=at, top_n=3)
    with_refs = [[question, answers, report], {"first": answers[0]}, {}]
    plain_refs = [
        [7, [a.pk for a in answers], {"question": 7, "requested_at": at, "top_n": 3, "note": ""}],
        {"first": answers[0].pk},
        {},
    ]
    return {"primitive payload": (primitive, primitive), "payload with 10 refs": (with_refs, plain_refs)}


#: The target of the payload with 10 refs: codec time at most this many times plain kombu JSON.
TARGET_10_REFS = 3.0
#: Refs per message of the growth curve.
CURVE = (1, 10, 100, 1_000)


def refs_payload(count: int) -> tuple[Any, Any]:
    """``count`` instances in one argument (each its own envelope) and, plain, their ids."""
    from demo.models import Answer

    answers = [Answer.from_db("default", ["id", "question_id", "body"], [1 + i, 7, "a"]) for i in range(count)]
    return [[answers], {}, {}], [[[a.pk for a in answers]], {}, {}]


def main() -> int:
    codec.install()
    print(f"encode + decode, medians of {ROUNDS} alternating rounds x {REPEATS} messages (time.perf_counter_ns)")
    missed = False
    for name, (body, plain) in payloads().items():
        check_same_as_the_worker(body)
        codec_ns, plain_ns, ratio = compare(body, plain)
        line = (
            f"codec       {name:<22} taskops {codec_ns / 1000:,.1f} µs / plain {plain_ns / 1000:,.1f} µs = {ratio:.2f}x"
        )
        if "10 refs" in name:
            ok = ratio <= TARGET_10_REFS
            missed |= not ok
            line += f"  target <= {TARGET_10_REFS:.2f}x  {'ok' if ok else 'MISSED'}"
        print(line, flush=True)
    print("growth: one argument holding N instances (taskops) or their N ids (plain kombu JSON)")
    for count in CURVE:
        body, plain = refs_payload(count)
        check_same_as_the_worker(body)
        codec_ns, plain_ns, ratio = compare(body, plain, repeats=max(10, 20_000 // count // 10), rounds=7)
        print(
            f"codec       {count:>5,} refs   taskops {codec_ns / 1000:9,.1f} µs ({codec_ns / count / 1000:5.2f} µs/ref)"
            f" / plain {plain_ns / 1000:8,.1f} µs = {ratio:.2f}x",
            flush=True,
        )
    missed |= not hostile_body_line()
    return 1 if missed else 0


#: A 1 MB escape bomb (the body that blocked a worker's consumer): decoded, and refused, within this.
TARGET_HOSTILE_MS = 100.0


def hostile_body_line() -> bool:
    """Print the decode time of a 1 MB hostile body (best of 5, CPU time); whether it is within its target."""
    text = "[" * 40 + '"' + '\\"' * 500_000
    times = []
    for _ in range(5):
        started = time.process_time()
        with contextlib.suppress(ValueError):  # refused by the parser: what the worker does with it
            codec.loads(text)
        times.append(time.process_time() - started)
    best_ms = min(times) * 1000
    ok = best_ms <= TARGET_HOSTILE_MS
    print(
        f"codec       hostile body, {len(text) / 1e6:.1f} MB   decoded and refused in {best_ms:,.1f} ms"
        f"  target <= {TARGET_HOSTILE_MS:.0f} ms  {'ok' if ok else 'MISSED'}",
        flush=True,
    )
    return ok


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    sys.exit(main())
