"""The spool: JSON lines on local disk, bounded, read back in order, adopted from a process that died."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from taskops.recording.records import DispatchRecord, RefRecord
from taskops.recording.spool import PREFIX, Spool, dump_record, load_record


def ints(folder: Path, max_bytes: int = 1000) -> Spool[int]:
    return Spool(folder, max_bytes, json.dumps, json.loads)


def test_items_come_back_in_order_and_the_file_goes(tmp_path: Path) -> None:
    spool = ints(tmp_path)
    for item in range(5):
        assert spool.put(item)
    assert len(spool) == 5
    assert spool.take(3) == [0, 1, 2]
    assert spool.put(5)
    assert spool.take(10) == [3, 4, 5]
    assert len(spool) == 0
    assert not list(tmp_path.iterdir())  # all read: removed


def test_the_file_is_bounded(tmp_path: Path) -> None:
    spool = ints(tmp_path, max_bytes=10)
    assert spool.put(1234)  # 5 bytes with its newline
    assert spool.put(5678)
    assert not spool.put(9)  # 12 would pass 10
    assert spool.take(10) == [1234, 5678]
    assert spool.put(9)  # room again


def test_a_dead_process_s_spool_is_adopted(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    left = tmp_path / f"{PREFIX}{int(dead.stdout)}-abcd.jsonl"
    left.write_text("1\n2\n3")  # the last line cut short by the crash
    spool = ints(tmp_path)
    assert len(spool) == 2
    assert spool.take(10) == [1, 2]
    assert not left.exists()


def test_a_record_survives_the_round_trip(tmp_path: Path) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ref = RefRecord("testapp.question", 7, "args[0]", {"title": "abc"}, {"body": "b"}, "Why?", "default")
    record = DispatchRecord(
        "id-1", "t.name", "[1]", "{}", False, "q", None, when, when, 0, "", "id-1", "", False, [ref], "key"
    )
    assert load_record(dump_record(record)) == record
    assert "pickle" not in dump_record(record)
