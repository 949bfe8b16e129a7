"""``make bench``: run every benchmark module of this package, each in a process of its own.

Each module sets up Django with the settings it needs (the recording bench
uses ``bench.settings``: a database and queue of its own), so they cannot
share one process. A module that cannot run here (e.g. the admin bench
without PostgreSQL) says why and the others still run.

``make bench STACKS=both`` (``TASKOPS_BENCH_STACKS``, see :mod:`bench.stacks`)
runs the modules whose figures depend on the database and broker
(:data:`PER_STACK`) once per stack, those that need PostgreSQL on the
PostgreSQL stack, and the others once.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import bench
from bench.databases import NOT_APPLICABLE
from bench.stacks import Stack, chosen

BASE_DIR = Path(__file__).resolve().parent.parent


def modules() -> list[str]:
    """Benchmark modules in name order (not this runner, not settings, not the shared rows)."""
    skip = {"settings", "databases", "million", "stacks", "tasks"}
    return sorted(
        info.name
        for info in pkgutil.iter_modules(bench.__path__)
        if not info.name.startswith("_") and info.name not in skip
    )


#: Modules measured once per stack (their figures are the database's and the broker's).
PER_STACK = {"cost", "recording", "redispatch"}
#: Modules that run on PostgreSQL only.
POSTGRESQL_ONLY = {"admin", "alerts"}


def runs(name: str, stacks: list[Stack]) -> list[Stack]:
    """The stacks module ``name`` runs on."""
    if name in PER_STACK:
        return stacks
    if name in POSTGRESQL_ONLY:
        return [stack for stack in stacks if stack.name == "pg+redis"] or stacks[:1]
    return stacks[:1]


def main() -> int:
    failed = []
    stacks = chosen()
    for name in modules():
        for stack in runs(name, stacks):
            where = "" if stack.name == "configured" else f" ({stack.name})"
            print(f"\n== bench.{name}{where}", flush=True)
            command = [sys.executable, "-m", f"bench.{name}"]
            result = subprocess.run(command, cwd=BASE_DIR, env=stack.environ(), check=False)
            if result.returncode == NOT_APPLICABLE:
                continue
            if result.returncode != 0:
                failed.append(f"bench.{name}{where} (exit {result.returncode})")
    if failed:
        print("\nnot run or failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
