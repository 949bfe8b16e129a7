"""``make bench``: run every benchmark module of this package, each in a process of its own.

Each module sets up Django with the settings it needs (the recording bench
uses ``bench.settings``: a database and queue of its own), so they cannot
share one process. A module that cannot run here (e.g. the admin bench
without PostgreSQL) says why and the others still run.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import bench
from bench.databases import NOT_APPLICABLE

BASE_DIR = Path(__file__).resolve().parent.parent


def modules() -> list[str]:
    """Benchmark modules in name order (not this runner, not settings, not the shared rows)."""
    skip = {"settings", "databases", "million", "stacks", "tasks"}
    return sorted(
        info.name
        for info in pkgutil.iter_modules(bench.__path__)
        if not info.name.startswith("_") and info.name not in skip
    )


def main() -> int:
    failed = []
    for name in modules():
        print(f"\n== bench.{name}", flush=True)
        result = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=BASE_DIR, check=False)
        if result.returncode == NOT_APPLICABLE:
            continue
        if result.returncode != 0:
            failed.append(f"bench.{name} (exit {result.returncode})")
    if failed:
        print("\nnot run or failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
