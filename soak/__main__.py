"""``python -m soak [--ci] [--stacks redis,rabbitmq] [--tasks N] ...``: each stack in a process of its own.

Exit status non-zero when any stack lost or stuck a task. ``--ci`` is the
size ``make test`` runs on the PostgreSQL + Redis leg: 2,000 tasks, one
kill, one broker restart, one 5 s cut.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--ci", action="store_true", help="the CI size: redis only, 2,000 tasks, one of each fault")
    parser.add_argument("--stacks", default="redis,rabbitmq", help="brokers beside PostgreSQL (redis, rabbitmq)")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=2, help="pool children SIGKILLed")
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument("--db-cuts", type=int, default=2)
    parser.add_argument("--cut-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=60.0, help="tasks published per second")
    options = parser.parse_args(argv)
    if options.ci:
        options.stacks, options.tasks, options.kills, options.broker_restarts, options.db_cuts = "redis", 2_000, 1, 1, 1
    return options


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    failed = []
    for broker in options.stacks.split(","):
        print(f"== soak: PostgreSQL + {broker}", flush=True)
        plan = [broker, options.tasks, options.kills, options.broker_restarts, options.db_cuts]
        plan += [options.cut_seconds, options.rate]
        command = [sys.executable, "-m", "soak.run", *map(str, plan)]
        if subprocess.run(command, cwd=BASE_DIR, check=False).returncode != 0:
            failed.append(broker)
    if failed:
        print(f"soak FAILED on: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
