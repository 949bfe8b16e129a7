"""Where the writer's records go when its queue is full: a local file, JSON lines, replayed in order.

A publish must not wait on the database, and memory must stay bounded: past
``WRITE_QUEUE_RECORDS`` / ``WRITE_QUEUE_BYTES`` the record is appended to
this process's spool file (one JSON line, kombu's JSON with its types; never
pickle), and the writer thread reads it back once its queue has room. The
file is bounded too (``SPOOL_BYTES``): past it, the record is dropped, logged
and counted. A file left by a process that died (its pid is gone) is adopted
by the next spool opened in the same folder, so its records are written too.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import attrs
from kombu.utils import json

from taskops.recording.records import DispatchRecord, RefRecord

T = TypeVar("T")

PREFIX = "taskops-spool-"


class Spool(Generic[T]):
    """An append-only file of items, read back from the front; emptied (removed) once all is read."""

    def __init__(
        self, folder: Path, max_bytes: int, dump: Callable[[T], str], load: Callable[[str], T], adopt: bool = True
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._dump = dump
        self._load = load
        self._lock = threading.Lock()
        self._files: list[Path] = []  # adopted ones first, then this process's own
        self._own = folder / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._count = 0
        self._bytes = 0
        self._offset = 0  # bytes of the first file already read
        folder.mkdir(parents=True, exist_ok=True)
        if adopt:
            self._adopt()

    def __len__(self) -> int:
        return self._count

    def put(self, item: T) -> bool:
        """Append ``item``; False when it cannot be written or would pass ``max_bytes``."""
        try:
            line = (self._dump(item) + "\n").encode()
        except (TypeError, ValueError):
            return False
        with self._lock:
            if self._bytes + len(line) > self.max_bytes:
                return False
            try:
                with self._own.open("ab") as file:
                    file.write(line)
            except OSError:
                return False
            if self._own not in self._files:
                self._files.append(self._own)
            self._count += 1
            self._bytes += len(line)
        return True

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` items from the front, in the order they were put."""
        items: list[T] = []
        with self._lock:
            while self._files and len(items) < limit:
                path = self._files[0]
                try:
                    with path.open("rb") as file:
                        file.seek(self._offset)
                        while len(items) < limit:
                            line = file.readline()
                            if not line.endswith(b"\n"):
                                break  # the end (or a line cut by a crash: dropped with the file)
                            self._offset += len(line)
                            self._bytes -= len(line)
                            self._count -= 1
                            with contextlib.suppress(ValueError, TypeError, KeyError):
                                items.append(self._load(line.decode()))
                        else:
                            continue
                except OSError:
                    pass
                self._files.pop(0)
                self._offset = 0
                with contextlib.suppress(OSError):
                    path.unlink()
            if not self._files:
                self._count = self._bytes = 0
        return items

    def _adopt(self) -> None:
        """Take over the files of processes that are gone: their records are written by this one."""
        for path in sorted(self.folder.glob(f"{PREFIX}*.jsonl")):
            try:
                pid = int(path.name[len(PREFIX) :].split("-")[0])
            except ValueError:
                continue
            if pid == os.getpid() or _alive(pid):
                continue
            adopted = path.with_name(f"{PREFIX}{os.getpid()}-adopted-{uuid.uuid4().hex[:8]}.jsonl")
            try:
                path.rename(adopted)  # one adopter wins; the others find it gone
                data = adopted.read_bytes()
            except OSError:
                continue
            lines = data.count(b"\n")
            if lines:
                self._files.append(adopted)
                self._count += lines
                self._bytes += len(data)
            else:
                adopted.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def dump_record(record: DispatchRecord) -> str:
    return json.dumps(attrs.asdict(record))


def load_record(line: str) -> DispatchRecord:
    data = json.loads(line)
    data["refs"] = [RefRecord(**ref) for ref in data["refs"]]
    return DispatchRecord(**data)
