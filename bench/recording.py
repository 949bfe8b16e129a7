"""What recording costs: publish time, and end-to-end throughput with a prefork worker.

    python -m bench.recording [--publishes 5000] [--tasks 600] [--rounds 10]

Uses PostgreSQL and ``CELERY_BROKER_URL`` when ``DATABASE_URL`` and
``CELERY_BROKER_URL`` are set (a database beside the configured one, with
``_recording_bench`` added to its name), else SQLite and the filesystem
broker under ``var/``. The baseline
is the same code with ``TASKOPS["RECORDING"] = False``. Runs with and
without recording are interleaved, and the medians compared:

(a) publish: microseconds per ``flag_comment.delay(comment)`` (no worker),
    until the last ``delay`` returns; and, for the record, until the
    background writer has also written every record of the round;
(b) end to end: tasks per second from the first publish until the last
    django-celery-results row says SUCCESS, with a prefork worker subprocess.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    from bench.databases import bench_database_url, ensure_database

    url = bench_database_url("recording_bench")
    if url:
        ensure_database(url)

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def recording(on: bool) -> Iterator[None]:
    """Recording on or off in this process, as ``TASKOPS["RECORDING"]`` says."""
    from django.test import override_settings

    with override_settings(TASKOPS={"RECORDING": on}):
        yield


def purge(queue: str) -> None:
    """Empty ``queue`` and its lane (where publishers with recording on send: ``taskops.wire.lanes``).

    Left in the lane, one round's messages would be run by the next taskops
    worker before it answers as ready; on the filesystem broker, whose every
    read lists the whole folder, thousands of them outlast the wait.
    """
    from config.celery import app
    from taskops.wire.lanes import lane_of

    with app.connection_for_write() as conn:
        for name in dict.fromkeys((queue, lane_of(queue))):
            conn.default_channel.queue_purge(name)  # type: ignore[attr-defined]


def reset_tables() -> None:
    from django_celery_results.models import TaskResult

    from taskops.models import Dispatch

    flush_records()

    Dispatch.objects.all().delete()
    TaskResult.objects.all().delete()


def comment() -> Any:
    from demo.models import Answer, Comment, Question

    question = Question.objects.create(title="Bench", body="Is recording cheap?")
    answer = Answer.objects.create(question=question, body="Measure it.")
    return Comment.objects.create(answer=answer, body="no spam here")


def flush_records() -> None:
    """Wait for the background writer, so that one round's writes never overlap the next round."""
    from taskops.recording import flush

    if not flush(timeout=300):
        raise RuntimeError("the taskops writer did not catch up")


def publish_round(on: bool, count: int, target: Any) -> tuple[float, float]:
    """Microseconds per ``delay`` for ``count`` publishes: until the calls return, until the records are written."""
    from demo.tasks import flag_comment

    with recording(on):
        started = time.perf_counter()
        for _ in range(count):
            flag_comment.delay(target)
        returned = time.perf_counter()
        flush_records()
        written = time.perf_counter()
    return (returned - started) / count * 1e6, (written - started) / count * 1e6


def bench_publish(total: int, rounds: int) -> dict[str, float]:
    from django.conf import settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    target = comment()
    publish_round(True, 50, target)  # warm up: connections, content types
    publish_round(False, 50, target)
    per_round = max(1, total // rounds)
    timings: dict[bool, list[float]] = {True: [], False: []}
    written: dict[bool, list[float]] = {True: [], False: []}
    try:
        for index in range(rounds):
            for on in (True, False) if index % 2 == 0 else (False, True):
                returned, all_written = publish_round(on, per_round, target)
                timings[on].append(returned)
                written[on].append(all_written)
            purge(queue)
    finally:
        purge(queue)
        reset_tables()
    with_rec, without = statistics.median(timings[True]), statistics.median(timings[False])
    with_written, without_written = statistics.median(written[True]), statistics.median(written[False])
    return {
        "with_us": with_rec,
        "without_us": without,
        "ratio": with_rec / without,
        "with_written_us": with_written,
        "written_ratio": with_written / without_written,
        "n": per_round * rounds,
    }


def start_worker(on: bool, concurrency: int) -> subprocess.Popen[bytes]:
    from django.conf import settings

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "TASKOPS_BENCH_RECORDING": "1" if on else "0"}
    log = Path(settings.VAR_DIR) / f"bench-worker-{'on' if on else 'off'}.log"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--loglevel=WARNING"]
    command += [f"--concurrency={concurrency}", f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}"]
    command += ["--without-mingle", "--without-gossip", f"--hostname=bench-{os.getpid()}@%h"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process


def wait_until_ready(on: bool, timeout: float = 90) -> None:
    """A task that the worker runs: then it is consuming."""
    from demo.tasks import flag_comment

    with recording(on):
        flag_comment.delay(comment()).get(timeout=timeout)


def end_to_end_round(on: bool, count: int, concurrency: int) -> float:
    """Tasks per second: first publish to the last SUCCESS stored by django-celery-results."""
    from django_celery_results.models import TaskResult

    from demo.tasks import flag_comment

    worker = start_worker(on, concurrency)
    try:
        wait_until_ready(on)
        reset_tables()
        target = comment()
        with recording(on):
            started = time.perf_counter()
            ids = [flag_comment.delay(target).id for _ in range(count)]
            while TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count() < count:
                if worker.poll() is not None:
                    raise RuntimeError("the bench worker exited")
                time.sleep(0.05)
            return count / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        reset_tables()


def bench_end_to_end(count: int, rounds: int, concurrency: int) -> dict[str, float]:
    rates: dict[bool, list[float]] = {True: [], False: []}
    for index in range(rounds):
        for on in (True, False) if index % 2 == 0 else (False, True):
            rates[on].append(end_to_end_round(on, count, concurrency))
    with_rec, without = statistics.median(rates[True]), statistics.median(rates[False])
    return {"with_per_s": with_rec, "without_per_s": without, "ratio": with_rec / without, "n": count}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recording", description=__doc__.split("\n")[0])
    parser.add_argument("--publishes", type=int, default=5000, help="publishes per mode for (a)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds for (a)")
    parser.add_argument("--tasks", type=int, default=600, help="tasks per end-to-end round for (b)")
    parser.add_argument("--e2e-rounds", type=int, default=3, dest="e2e_rounds")
    parser.add_argument("--concurrency", type=int, default=2)
    options = parser.parse_args(argv)
    setup()
    from django.conf import settings
    from django.db import connection

    print(f"recording bench: {connection.vendor} + {settings.CELERY_BROKER_URL.split(':')[0]}")
    publish = bench_publish(options.publishes, options.rounds)
    print(
        f"(a) publish, median us per delay over {publish['n']:.0f} each: "
        f"recording {publish['with_us']:.0f}, without {publish['without_us']:.0f}, "
        f"ratio {publish['ratio']:.3f} (target <= 1.25); "
        f"until the records are written too: {publish['with_written_us']:.0f}, ratio {publish['written_ratio']:.3f}"
    )
    e2e = bench_end_to_end(options.tasks, options.e2e_rounds, options.concurrency)
    print(
        f"(b) end to end, median tasks/s over rounds of {e2e['n']:.0f}: "
        f"recording {e2e['with_per_s']:.1f}, without {e2e['without_per_s']:.1f}, "
        f"ratio {e2e['ratio']:.3f} (target >= 0.85)"
    )


if __name__ == "__main__":
    main()
