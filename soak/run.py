"""One soak run on one stack: PostgreSQL behind a cuttable proxy, a broker of its own, a prefork worker.

The host project (``config``, the demo's tasks) publishes tasks that take
model instances at a steady rate while faults are injected at set points of
the run: a pool child SIGKILLed, the broker restarted, the database cut.
Then it waits for the queue to drain and reconciles, reading the database
directly: every task whose ``delay()`` returned must have a row in a final
state, none may be left PENDING/RECEIVED/STARTED, none recorded twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg

from soak.brokers import Broker, make_broker
from soak.proxy import Proxy

BASE_DIR = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: States after which nothing more happens (``taskops.models.FINISHED_STATES``, read without Django).
FINAL = ("SUCCESS", "FAILURE", "REVOKED", "REJECTED", "IGNORED", "SKIPPED")
#: Seconds without progress after which the drain gives up.
STALL_SECONDS = 120


@attrs.frozen
class Plan:
    """What one run does."""

    broker: str
    tasks: int
    kills: int
    broker_restarts: int
    db_cuts: int
    cut_seconds: float
    rate: float
    database: str = "taskops_soak"

    def faults(self) -> list[tuple[float, str]]:
        """(fraction of the tasks published, fault), spread over the run and never at the same point."""
        points: list[tuple[float, str]] = []
        spread = (("kill", self.kills, 0.2), ("cut", self.db_cuts, 0.3), ("restart", self.broker_restarts, 0.45))
        for kind, count, first in spread:
            points += [(first + index * 0.4, kind) for index in range(count)]
        return sorted(points)


@attrs.define
class Tally:
    published: list[str] = attrs.Factory(list)
    refused: int = 0
    faults: list[str] = attrs.Factory(list)


def fresh_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def environment(plan: Plan, db_port: int, broker: Broker, var: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "soak-only-not-a-secret",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{db_port}/{plan.database}",
        "CELERY_BROKER_URL": broker.url,
        "TASKOPS_VAR_DIR": str(var),
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A prefork worker of two children; returns once it says it is ready."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=2", "--loglevel=INFO"]
    command += ["--without-gossip", "--without-mingle", "--hostname=soak@%h"]
    log.unlink(missing_ok=True)
    with log.open("ab") as out:
        worker = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the soak's worker did not start; see {log}")
        time.sleep(0.2)
    return worker


def pool_children(worker: subprocess.Popen[bytes]) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def inject(plan: Plan, tally: Tally, worker: subprocess.Popen[bytes], broker: Broker, proxy: Proxy) -> None:
    """Run each fault when its share of the tasks has been published (a thread of its own)."""
    for fraction, kind in plan.faults():
        while len(tally.published) + tally.refused < fraction * plan.tasks:
            time.sleep(0.05)
        if kind == "kill":
            children = pool_children(worker)
            if children:
                os.kill(children[0], signal.SIGKILL)
            tally.faults.append(f"killed pool child {children[:1]}")
        elif kind == "cut":
            proxy.cut(plan.cut_seconds)
            tally.faults.append(f"cut the database for {plan.cut_seconds:g}s")
        else:
            broker.stop()
            time.sleep(1)
            broker.start()
            tally.faults.append(f"restarted {broker.name}")


def publish(plan: Plan, tally: Tally) -> None:
    """``plan.tasks`` calls with model instances, at ``plan.rate`` per second; a call that raised is counted apart."""
    from demo.models import Answer, Question
    from demo.tasks import notify_followers, rebuild_summary

    questions = list(Question.objects.order_by("pk"))
    answers = {q.pk: list(Answer.objects.filter(question=q)[:2]) for q in questions}
    started = time.monotonic()
    for index in range(plan.tasks):
        question = questions[index % len(questions)]
        try:
            if index % 5 == 0:
                task_id = rebuild_summary.delay(question, answers[question.pk]).id
            else:
                task_id = notify_followers.delay(question).id
        except Exception:  # noqa: BLE001  # a publish that raised: the caller knows; not owed a row
            tally.refused += 1
        else:
            tally.published.append(task_id)
        ahead = started + (index + 1) / plan.rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def seed(count: int = 100) -> None:
    from demo.models import Answer, Question

    questions = Question.objects.bulk_create(Question(title=f"Soak question {i}", body="b") for i in range(count))
    Answer.objects.bulk_create(Answer(question=q, body=f"answer {j}") for q in questions for j in range(2))


def states(database: str, task_ids: list[str]) -> Counter[str]:
    """Row states of ``task_ids``, read directly (not through the proxy); ``MISSING`` for no row."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as connection:
        rows = connection.execute(
            "SELECT state, count(*) FROM taskops_dispatch WHERE task_id = ANY(%s) GROUP BY state", (task_ids,)
        ).fetchall()
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT task_id FROM taskops_dispatch GROUP BY task_id HAVING count(*) > 1) d"
        ).fetchone()
    found: Counter[str] = Counter({state: count for state, count in rows})
    found["MISSING"] = len(task_ids) - sum(found.values())
    found["DUPLICATED"] = duplicates[0] if duplicates else 0
    return found


def drain(plan: Plan, tally: Tally, log: Callable[[str], None]) -> Counter[str]:
    """Wait until every published task's row is final, or nothing has moved for ``STALL_SECONDS``."""
    last, moved = -1, time.monotonic()
    while True:
        found = states(plan.database, tally.published)
        final = sum(found[state] for state in FINAL)
        if final == len(tally.published):
            return found
        if final != last:
            last, moved = final, time.monotonic()
            log(f"draining: {final}/{len(tally.published)} final")
        elif time.monotonic() - moved > STALL_SECONDS:
            return found
        time.sleep(2)


def run(plan: Plan, var: Path, log: Callable[[str], None]) -> tuple[Counter[str], Tally, float]:
    """The whole run; returns the reconciled states, what was published, and the seconds it took."""
    var.mkdir(parents=True, exist_ok=True)
    fresh_database(plan.database)
    broker = make_broker(plan.broker, var / f"broker-{plan.broker}")
    broker.start()
    proxy = Proxy(5432).start()
    env = environment(plan, proxy.port, broker, var)
    direct = {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{plan.database}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=direct, check=True)
    os.environ.update(env)
    import django

    django.setup()
    from taskops import recording

    seed()
    worker = start_worker(env, var / f"worker-{plan.broker}.log")
    tally = Tally()
    started = time.monotonic()
    try:
        faults = threading.Thread(target=inject, args=(plan, tally, worker, broker, proxy), daemon=True)
        faults.start()
        publish(plan, tally)
        faults.join()
        flushed = recording.flush(timeout=120)
        log(f"published {len(tally.published)} (refused {tally.refused}); recorder flushed: {flushed}")
        found = drain(plan, tally, log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        proxy.stop()
        broker.stop()
    return found, tally, time.monotonic() - started


def summary(plan: Plan, found: Counter[str], tally: Tally, seconds: float) -> str:
    final = sum(found[state] for state in FINAL)
    stuck = sum(found[state] for state in ("PENDING", "RECEIVED", "STARTED", "RETRY"))
    by_state = " ".join(f"{state.lower()}={found[state]}" for state in FINAL if found[state])
    return (
        f"soak pg+{plan.broker}: tasks={plan.tasks} published={len(tally.published)} refused={tally.refused} "
        f"final={final} {by_state} stuck={stuck} missing={found['MISSING']} duplicated={found['DUPLICATED']} "
        f"kills={plan.kills} broker_restarts={plan.broker_restarts} db_cuts={plan.db_cuts}x{plan.cut_seconds:g}s "
        f"seconds={seconds:.0f}"
    )


def passed(found: Counter[str], tally: Tally) -> bool:
    return sum(found[state] for state in FINAL) == len(tally.published) and not found["DUPLICATED"]


def main(argv: Any = None) -> int:
    """``python -m soak.run BROKER TASKS KILLS RESTARTS CUTS CUT_SECONDS RATE``: one stack, in this process."""
    broker, tasks, kills, restarts, cuts, cut_seconds, rate = argv or sys.argv[1:]
    plan = Plan(broker, int(tasks), int(kills), int(restarts), int(cuts), float(cut_seconds), float(rate))
    found, tally, seconds = run(plan, BASE_DIR / "var" / "soak", lambda line: print(f"  {line}", flush=True))
    for fault in tally.faults:
        print(f"  fault: {fault}", flush=True)
    print(summary(plan, found, tally, seconds), flush=True)
    return 0 if passed(found, tally) else 1


if __name__ == "__main__":
    sys.exit(main())
