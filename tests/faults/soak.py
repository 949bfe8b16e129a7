"""The soak (``make soak``): many tasks with refs through faults, then a reconciliation of every record.

Publishes ``--tasks`` tasks that reference a model instance, to a real
prefork worker, on PostgreSQL (a database of its own, behind
:class:`~tests.faults.proxy.Proxy`) and Redis or RabbitMQ (a server of its
own that keeps its messages across a restart, :mod:`tests.faults.brokers`).
Meanwhile it SIGKILLs a pool child twice, restarts the broker once and cuts
the database twice, for the publisher and the worker alike. Then it checks:
every task whose ``delay()`` returned
has a row in a final state, none is left ``PENDING``/``STARTED``, no row or
ref is there twice; and prints one summary line. Exit status 1 if not.

    python -m tests.faults.soak --broker redis --tasks 20000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from tests.faults.brokers import Broker, make_broker
from tests.faults.proxy import Proxy

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATABASE = "taskops_faults_soak"
FINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "SKIPPED"}
#: The faults of ``make soak``, in order, at 15, 30, 45, 60 and 75 % of the tasks published.
FULL = ("kill", "cut", "restart", "kill", "cut")
#: The CI-sized soak's (``make soak-ci``): one of each.
CI = ("kill", "cut", "restart")
#: Seconds the database stays cut, each time.
CUT_SECONDS = 5.0
#: Seconds the tasks get to settle after the last publish.
DRAIN_SECONDS = 2400.0
#: Seconds without any task settling after which the wait ends (what is left is stuck).
IDLE_SECONDS = 120.0


def sql(query: str, params: tuple[Any, ...] = (), database: str = DATABASE) -> list[tuple[Any, ...]]:
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_database(env: dict[str, str]) -> None:
    sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", database="postgres")
    sql(f"CREATE DATABASE {DATABASE}", database="postgres")
    migrate = [sys.executable, "-m", "django", "migrate", "--noinput", "--verbosity=0"]
    subprocess.run(migrate, cwd=BASE_DIR, env=env, check=True, timeout=600)


def start_worker(env: dict[str, str], queue: str, log_path: Path, again: bool = False) -> subprocess.Popen[bytes]:
    """A prefork worker on ``queue``, once it says it is ready; ``again``: its log goes on (a restart)."""
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--loglevel=INFO"]
    command += [f"--hostname=soak-{uuid.uuid4().hex[:6]}@%h", "--concurrency=2", f"--queues={queue}"]
    command += ["--without-mingle", "--without-gossip"]
    ready_before = log_path.read_text(errors="replace").count(" ready.") if again and log_path.exists() else 0
    with log_path.open("ab" if again else "wb") as log:
        worker = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while log_path.read_text(errors="replace").count(" ready.") <= ready_before:
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()  # never left running beside the one started next
            raise RuntimeError(f"the worker did not start: see {log_path}")
        time.sleep(0.2)
    return worker


class SupervisedWorker:
    """The worker as a supervisor (systemd, honcho, Kubernetes) runs it: started again if it exits.

    Celery's main process can itself exit at a broker restart: kombu's Redis
    transport may meet the connection already gone while it restores its
    unacknowledged messages on close ("Unrecoverable error: AttributeError
    ... 'hostname'"). In production a supervisor starts it again, and the
    messages it held come back after the broker's visibility timeout; the
    soak does the same, and its summary counts each restart.
    """

    def __init__(self, env: dict[str, str], queue: str, log_path: Path) -> None:
        self.env, self.queue, self.log_path = env, queue, log_path
        self.process = start_worker(env, queue, log_path)
        #: Exit status of each time the worker exited on its own (and was started again).
        self.exits: list[int] = []
        self._counted: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            code = self.process.poll()
            if code is None:
                continue
            if self.process.pid not in self._counted:
                self._counted.add(self.process.pid)
                self.exits.append(code)
            try:
                self.process = start_worker(self.env, self.queue, self.log_path, again=True)
            except RuntimeError:  # not ready within its time (the broker still away): the next round tries again
                continue

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(180)
        self.process.terminate()
        self.process.wait(60)


def kill_a_pool_child(worker: subprocess.Popen[bytes]) -> int:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    if not children:
        return 0
    os.kill(int(children[0]), signal.SIGKILL)
    return int(children[0])


class Chaos:
    """The faults, each once its share of the tasks is published; each runs beside the publishing."""

    def __init__(self, proxy: Proxy, worker: SupervisedWorker, broker: Broker, plan: list[str]) -> None:
        self.proxy, self.worker, self.broker = proxy, worker, broker
        self.done: list[str] = []
        faults = {"kill": self.kill, "cut": self.cut, "restart": self.restart_broker, "crash": self.crash}
        shares = (0.15, 0.30, 0.45, 0.60, 0.75)
        self.plan = [(share, faults[name]) for share, name in zip(shares, plan, strict=False)]
        self.threads: list[threading.Thread] = []
        #: (stopped, back) wall-clock times of each broker restart.
        self.restarts: list[tuple[float, float]] = []

    def at(self, share: float) -> None:
        while self.plan and share >= self.plan[0][0]:
            _, fault = self.plan.pop(0)
            thread = threading.Thread(target=fault, daemon=True)
            thread.start()
            self.threads.append(thread)

    def kill(self) -> None:
        self.done.append(f"killed pool child {kill_a_pool_child(self.worker.process)}")

    def crash(self) -> None:
        """The worker's main process dies at once (its supervisor starts it again)."""
        pid = self.worker.process.pid
        os.kill(pid, signal.SIGKILL)
        self.done.append(f"worker {pid} killed")

    def cut(self) -> None:
        self.proxy.cut()
        time.sleep(CUT_SECONDS)
        self.proxy.restore()
        self.done.append(f"database cut {CUT_SECONDS:.0f}s")

    def restart_broker(self) -> None:
        stopped = time.time()
        self.broker.restart()
        self.restarts.append((stopped, time.time()))
        self.done.append(f"{self.broker.name} restarted")

    def wait(self) -> None:
        for thread in self.threads:
            thread.join(60)


def publish_all(total: int, rate: float, queue: str, chaos: Chaos) -> tuple[list[str], int, float]:
    """Publish; the ids whose apply_async returned, the number that raised, the slowest call."""
    from tests.testapp.models import Question  # after django.setup(), in main()
    from tests.testapp.tasks import read_body

    questions = [Question.objects.create(title=f"soak {n}", body="b") for n in range(50)]
    policy = {"max_retries": 10, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}
    returned: list[str] = []
    raised, slowest = 0, 0.0
    started = time.monotonic()
    for n in range(total):
        chaos.at(n / total)
        call = time.monotonic()
        try:
            result = read_body.apply_async((questions[n % len(questions)],), queue=queue, retry_policy=policy)
            returned.append(result.id)
        except Exception:  # noqa: BLE001  # the broker was away for longer than the retries: not returned
            raised += 1
        slowest = max(slowest, time.monotonic() - call)
        ahead = started + (n + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    return returned, raised, slowest


def reconcile(task_ids: list[str]) -> dict[str, Any]:
    """Wait until every task is final (or nothing moved for ``IDLE_SECONDS``), then count."""
    deadline = time.monotonic() + DRAIN_SECONDS
    last_change, last_open = time.monotonic(), -1
    while True:
        found = dict(sql("SELECT task_id, state FROM taskops_dispatch WHERE task_id = ANY(%s)", (task_ids,)))
        still_open = len(task_ids) - sum(state in FINAL for state in found.values())
        if still_open != last_open:
            last_change, last_open = time.monotonic(), still_open
        now = time.monotonic()
        if not still_open or now > deadline or now - last_change > IDLE_SECONDS:
            break
        time.sleep(2)
    states = Counter(found.values())
    stuck_ids = sorted(task_id for task_id in task_ids if found.get(task_id) not in FINAL)
    twice = sql("SELECT count(*) FROM (SELECT task_id FROM taskops_dispatch GROUP BY task_id HAVING count(*) > 1) t")
    refs_twice = sql(
        "SELECT count(*) FROM (SELECT dispatch_id, argument FROM taskops_objectref"
        " GROUP BY dispatch_id, argument HAVING count(*) > 1) t"
    )
    refs = sql(
        "SELECT count(*) FROM taskops_objectref r JOIN taskops_dispatch d ON d.id = r.dispatch_id"
        " WHERE d.task_id = ANY(%s)",
        (task_ids,),
    )
    return {
        "rows": len(found),
        "missing": len(task_ids) - len(found),
        "stuck": sum(n for state, n in states.items() if state not in FINAL),
        "states": dict(states),
        "duplicate_rows": twice[0][0],
        "duplicate_refs": refs_twice[0][0],
        "refs": refs[0][0],
        "stuck_ids": stuck_ids,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="taskops soak: many tasks with refs through faults")
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=150.0, help="publishes per second at most")
    parser.add_argument(
        "--faults",
        default=",".join(FULL),
        help=f"in order, comma-separated, of kill, cut, restart, crash (default {','.join(FULL)}; CI: {','.join(CI)})",
    )
    args = parser.parse_args()
    var = Path(os.environ.get("TASKOPS_VAR_DIR", BASE_DIR / "var")) / "soak"
    var.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    env.pop("TASKOPS_TEST_WORKER_DB", None)
    env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    fresh_database(env)
    proxy = Proxy(5432, lifetime=3 * 3600)
    broker = make_broker(args.broker, Path(tempfile.mkdtemp(prefix=f"taskops-soak-{args.broker}-")))
    broker.start()
    env["DATABASE_URL"] = proxy.url_for(DATABASE)
    env["CELERY_BROKER_URL"] = broker.url
    env["TASKOPS_TEST_BROKER_OPTIONS"] = json.dumps({"visibility_timeout": 30})
    os.environ.update(env)
    queue = f"taskops-faults-soak-{uuid.uuid4().hex[:8]}"
    worker_log = var / f"worker-{args.broker}.log"
    worker = SupervisedWorker(env, queue, worker_log)
    lost: set[str] = set()
    gone: set[str] = set()
    try:
        import django

        django.setup()
        from taskops import recording

        chaos = Chaos(proxy, worker, broker, args.faults.split(","))
        started = time.monotonic()
        returned, raised, slowest = publish_all(args.tasks, args.rate, queue, chaos)
        chaos.wait()
        flushed = recording.flush(300)
        result = reconcile(returned)
        elapsed = time.monotonic() - started
        worker.stop()  # nothing is taken any more: what the broker holds now, it keeps
        lost = lost_by_broker(result["stuck_ids"], broker, queue, worker_log, chaos.restarts)
        gone = lost_with_a_worker(result["stuck_ids"], worker_log) if worker.exits else set()
    finally:
        worker.stop()
        proxy.stop()
        broker.stop()
    stuck = result["stuck"] - len(lost) - len(gone - lost)
    ok = flushed and not (result["missing"] or stuck or result["duplicate_rows"] or result["duplicate_refs"])
    print(
        f"soak {args.broker}: {'OK' if ok else 'FAILED'} in {elapsed:.0f}s; published {len(returned)} "
        f"(+{raised} raised), rows {result['rows']}, missing {result['missing']}, stuck {stuck}, "
        f"lost by the broker {len(lost)}, lost with a worker that died {len(gone - lost)}, "
        f"duplicates {result['duplicate_rows']}/{result['duplicate_refs']}, refs {result['refs']}, "
        f"states {result['states']}, flushed {flushed}, dropped {recording.dropped_count()}, "
        f"slowest delay() {slowest:.3f}s; faults: {', '.join(chaos.done)}; "
        f"worker restarted by its supervisor {len(worker.exits)} time(s) (exit status {worker.exits}); "
        f"worker log {worker_log}"
    )
    for task_id in result["stuck_ids"][:20]:
        told = (
            "lost by the broker"
            if task_id in lost
            else "lost with a worker that died"
            if task_id in gone
            else result_state(task_id)
        )
        print(f"  not final: {task_id} ({told}); worker log: {worker_lines(worker_log, task_id)}")
    return 0 if ok else 1


def lost_by_broker(
    stuck_ids: list[str], broker: Broker, queue: str, log: Path, restarts: list[tuple[float, float]]
) -> set[str]:
    """The stuck tasks whose message the broker itself lost at a restart, at most one a restart.

    kombu's Redis transport takes a message off the queue (``BRPOP``) and
    only then records it as unacked: a message popped in the instant the
    server stops is in neither place and never reaches the worker's code
    (celery/kombu#305). Such a task is counted apart only when all of this
    holds: its row is ``PENDING`` (the worker never wrote of it), the worker's
    log never names it, the broker holds no copy of it, and it was published
    before the broker came back. Anything else stuck fails the soak.
    """
    lost: set[str] = set()
    for stopped, back in restarts:
        for task_id in stuck_ids:
            if task_id in lost or broker.holds(queue, task_id) is not False:
                continue
            query = "SELECT state, extract(epoch FROM enqueued_at) FROM taskops_dispatch WHERE task_id = %s"
            rows = sql(query, (task_id,))
            published_before_back = bool(rows) and stopped - 600 <= float(rows[0][1]) <= back
            if published_before_back and rows[0][0] == "PENDING" and worker_lines(log, task_id) == ["nothing"]:
                lost.add(task_id)
                break
    return lost


def lost_with_a_worker(stuck_ids: list[str], log: Path) -> set[str]:
    """The stuck tasks a worker took and died with, before it ran them.

    Without ``acks_late`` Celery acknowledges a message when its worker takes
    it for the pool, so a task taken and not yet run when the worker's main
    process dies is gone from the broker (Celery runs a task at most once).
    taskops keeps it visible: its row stays ``PENDING`` with its arguments.
    Counted apart only when all of this holds: its row is ``PENDING``, the
    worker's log says only that it was received, and that was before the
    last time a worker started (so by a worker that died since).
    """
    lines = log.read_text(errors="replace").splitlines()
    last_start = max((n for n, line in enumerate(lines) if line.endswith(" ready.")), default=-1)
    gone: set[str] = set()
    for task_id in stuck_ids:
        said = [n for n, line in enumerate(lines) if task_id in line]
        only_received = bool(said) and all(lines[n].endswith(" received") for n in said)
        if only_received and max(said) < last_start and result_state(task_id) == "PENDING":
            gone.add(task_id)
    return gone


def result_state(task_id: str) -> str:
    rows = sql("SELECT state FROM taskops_dispatch WHERE task_id = %s", (task_id,))
    return rows[0][0] if rows else "no row"


def worker_lines(log: Path, task_id: str) -> list[str]:
    """What the worker said of one task: to tell a message the broker lost from a record taskops lost."""
    lines = [line.strip()[:300] for line in log.read_text(errors="replace").splitlines() if task_id in line]
    return lines or ["nothing"]


if __name__ == "__main__":
    sys.exit(main())
