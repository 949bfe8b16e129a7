"""What taskops costs a Celery user, measured against plain Celery on the same stack, in one run.

    python -m bench.cost [--publishes 4000] [--rounds 16] [--tasks 600] [--e2e-rounds 3]

Plain Celery is the task as users write it without taskops
(:mod:`bench.tasks`): Celery's own base ``Task``, the pk on the wire, the
row fetched in the body, django-celery-results storing the result,
recording off, kombu's own JSON in the worker. taskops is the same task
taking the instance (``demo.tasks.flag_comment``), ``taskops.celery.Task``,
recording on. The two alternate round by round (the order flips each
round) and the medians are compared, so a machine busy with other work
weighs on both alike:

- publish: microseconds per ``.delay`` until it returns (no worker);
- end to end: tasks per second with a prefork worker, from the first
  publish until django-celery-results holds every SUCCESS.

Each line gives the two medians and the median of the rounds' ratios, which
the target judges (the machine's load changes more between rounds than
within one). DEBUG is off, as deployed (``bench.settings``).

The stack is the configured one (``bench.stacks``): PostgreSQL and Redis
when ``DATABASE_URL`` and ``CELERY_BROKER_URL`` name them (a database
beside the configured one), else SQLite and the filesystem broker.
One line per figure, with its ratio and target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.recording import comment, flush_records, purge, recording, reset_tables, setup
from bench.stacks import stack_name

BASE_DIR = Path(__file__).resolve().parent.parent
MODES = ("taskops", "plain")
#: stack -> (publish ratio at most, end-to-end ratio at least)
TARGETS = {"pg+redis": (1.10, 0.92), "sqlite+filesystem": (1.25, 0.85)}


def verdict_line(
    figure: str, stack: str, result: dict[str, float], unit: str, target: float | None, at_most: bool
) -> str:
    """``publish     pg+redis           taskops 2,101 µs / plain 1,950 µs = 1.08x  target <= 1.10x  ok``.

    The figures are medians; the ratio is the median of the rounds' ratios (:func:`summary`).
    """
    taskops, plain, ratio = result["taskops"], result["plain"], result["ratio"]
    if target is None:
        judged = "target -"
    else:
        ok = ratio <= target if at_most else ratio >= target
        judged = f"target {'<=' if at_most else '>='} {target:.2f}x  {'ok' if ok else 'MISSED'}"
    digits = 0 if unit == "µs" else 1
    figures = f"taskops {taskops:,.{digits}f} {unit} / plain {plain:,.{digits}f} {unit}"
    return f"{figure:<11} {stack:<18} {figures} = {ratio:.2f}x  {judged}"


def publish_round(mode: str, count: int, target: Any) -> float:
    """Microseconds per ``delay`` until the last call returns; the records are written before the next round."""
    from bench.tasks import flag_comment_by_id
    from demo.tasks import flag_comment

    with recording(mode == "taskops"):
        started = time.perf_counter()
        if mode == "taskops":
            for _ in range(count):
                flag_comment.delay(target)
        else:
            for _ in range(count):
                flag_comment_by_id.delay(target.pk)
        returned = time.perf_counter()
        flush_records()
    return (returned - started) / count * 1e6


def bench_publish(total: int, rounds: int) -> dict[str, float]:
    from django.conf import settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    target = comment()
    for mode in MODES:  # warm up: connections, content types, the writer thread
        publish_round(mode, 50, target)
    per_round = max(1, total // rounds)
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for index in range(rounds):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                timings[mode].append(publish_round(mode, per_round, target))
            purge(queue)
    finally:
        purge(queue)
        reset_tables()
    return summary(timings)


def summary(figures: dict[str, list[float]]) -> dict[str, float]:
    """Each mode's median, and the median of the ratios of the rounds (each pair ran side by side).

    The paired ratio is what the targets judge: the machine's load changes
    between rounds far more than within one.
    """
    ratios = [a / b for a, b in zip(figures["taskops"], figures["plain"], strict=True)]
    return {**{mode: statistics.median(values) for mode, values in figures.items()}, "ratio": statistics.median(ratios)}


def start_worker(mode: str, concurrency: int) -> subprocess.Popen[bytes]:
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "TASKOPS_BENCH_RECORDING": "1" if mode == "taskops" else "0",
        "TASKOPS_BENCH_PLAIN": "1" if mode == "plain" else "0",
    }
    log = Path(settings.VAR_DIR) / f"bench-cost-worker-{mode}.log"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--loglevel=WARNING"]
    command += [f"--concurrency={concurrency}", f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}"]
    command += ["--include=bench.tasks", "--without-mingle", "--without-gossip", f"--hostname=cost-{os.getpid()}@%h"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)


def send(mode: str, target: Any) -> str:
    from bench.tasks import flag_comment_by_id
    from demo.tasks import flag_comment

    return str((flag_comment.delay(target) if mode == "taskops" else flag_comment_by_id.delay(target.pk)).id)


def end_to_end_round(mode: str, count: int, concurrency: int) -> float:
    """Tasks per second: first publish to the last SUCCESS stored by django-celery-results."""
    from django_celery_results.models import TaskResult

    from bench.tasks import flag_comment_by_id
    from demo.tasks import flag_comment

    worker = start_worker(mode, concurrency)
    try:
        with recording(mode == "taskops"):
            task = flag_comment if mode == "taskops" else flag_comment_by_id
            warm = comment()
            task.delay(warm if mode == "taskops" else warm.pk).get(timeout=120)  # the worker consumes
            reset_tables()
            target = comment()
            started = time.perf_counter()
            ids = [send(mode, target) for _ in range(count)]
            while TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count() < count:
                if worker.poll() is not None:
                    raise RuntimeError(f"the bench worker ({mode}) exited")
                time.sleep(0.05)
            return count / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        reset_tables()


def bench_end_to_end(count: int, rounds: int, concurrency: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for index in range(rounds):
        for mode in MODES if index % 2 == 0 else MODES[::-1]:
            rates[mode].append(end_to_end_round(mode, count, concurrency))
    return summary(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--publishes", type=int, default=4000, help="publishes per mode (publish)")
    parser.add_argument("--rounds", type=int, default=16, help="interleaved rounds (publish)")
    parser.add_argument("--tasks", type=int, default=600, help="tasks per round (end to end)")
    parser.add_argument("--e2e-rounds", type=int, default=3, dest="e2e_rounds", help="rounds per mode (end to end)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--skip-e2e", action="store_true", help="publish only")
    options = parser.parse_args(argv)
    setup()
    from django.conf import settings
    from django.db import connection

    stack = stack_name(connection.vendor, settings.CELERY_BROKER_URL)
    publish_target, e2e_target = TARGETS.get(stack, (None, None))
    missed = False
    publish = bench_publish(options.publishes, options.rounds)
    line = verdict_line("publish", stack, publish, "µs", publish_target, True)
    missed |= "MISSED" in line
    print(line, flush=True)
    if not options.skip_e2e:
        e2e = bench_end_to_end(options.tasks, options.e2e_rounds, options.concurrency)
        line = verdict_line("end to end", stack, e2e, "tasks/s", e2e_target, False)
        missed |= "MISSED" in line
        print(line, flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
