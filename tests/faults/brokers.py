"""Brokers of the soak's own (:mod:`tests.faults.soak`), on free loopback ports, that it can restart.

Each keeps its messages across a restart, as a production broker is set up
to: Redis with its append-only file fsynced on every write, RabbitMQ with
its durable queues (Celery's default) on a node of its own. Only the
package's binaries are needed (``redis-server``, ``rabbitmq-server``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.2)


class RedisBroker:
    """``redis-server`` with AOF (``appendfsync always``) in a folder of its own."""

    name = "redis"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "yes",
            "appendfsync": "always",
            "dir": str(self.folder),
            "daemonize": "yes",
            "logfile": str(self.folder / "redis.log"),
            "pidfile": str(self.folder / "redis.pid"),
        }
        subprocess.run(
            ["redis-server", *(part for key, value in options.items() for part in (f"--{key}", value))], check=True
        )
        wait_until(lambda: listening(self.port), 30, f"redis-server on {self.port}")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], check=False, capture_output=True)
        wait_until(lambda: not listening(self.port), 30, f"redis-server on {self.port} stopping")

    def restart(self, pause: float = 1.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()

    def holds(self, queue: str, task_id: str) -> bool | None:
        """Whether a message of the task is still here: in the queue (any priority) or kombu's unacked hash."""
        import redis

        client = redis.Redis.from_url(self.url)
        needle = task_id.encode()
        for key in client.scan_iter(match=f"{queue}*"):
            if client.type(key) == b"list" and any(needle in item for item in client.lrange(key, 0, -1)):
                return True
        return any(needle in value for value in client.hvals("unacked"))


class RabbitBroker:
    """A RabbitMQ node of its own (its own name, ports, data and config)."""

    name = "rabbitmq"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.node = f"soak{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_CONFIG_FILE": str(self.folder / "soak.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "plugins"),
        }

    def start(self) -> None:
        if not (self.folder / "soak.conf").exists():
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            self.folder.chmod(0o777)  # the server drops to its own user
            (self.folder / "soak.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env(), check=True, cwd=self.folder)
        wait_until(lambda: listening(self.port), 120, f"rabbitmq node {self.node}")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.env(), check=False, capture_output=True)
        wait_until(lambda: not listening(self.port), 60, f"rabbitmq node {self.node} stopping")

    def restart(self, pause: float = 1.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()

    def holds(self, queue: str, task_id: str) -> bool | None:
        """Unknown: a queue's messages cannot be read without taking them."""
        return None


Broker = RedisBroker | RabbitBroker


def make_broker(name: str, folder: Path) -> Broker:
    if name == "redis":
        return RedisBroker(folder)
    if name == "rabbitmq":
        return RabbitBroker(folder)
    raise ValueError(f"unknown broker {name!r}")
