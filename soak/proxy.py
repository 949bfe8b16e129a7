"""A TCP proxy on loopback that can cut what goes through it: how the soak cuts the database.

Every connection to the proxy gets its own connection to the target; bytes
are pumped both ways by two threads. :meth:`Proxy.cut` closes every open
connection at once and refuses new ones (accepted, then closed) for the
given time, as a network partition or a restarting database would look to
its clients.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class Proxy:
    """Forwards ``127.0.0.1:<port>`` to ``(host, target_port)``; :meth:`cut` breaks it for a while."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.cuts = 0
        self.stopped = False

    def start(self) -> Proxy:
        threading.Thread(target=self._accept, name="soak-proxy", daemon=True).start()
        return self

    def cut(self, seconds: float) -> None:
        """Close every connection now, and refuse new ones for ``seconds``."""
        with self.lock:
            self.down_until = time.monotonic() + seconds
            self.cuts += 1
            for sock in self.open:
                _close(sock)
            self.open.clear()

    def stop(self) -> None:
        self.stopped = True
        self.cut(0)
        _close(self.listener)

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self.lock:
                self.open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(source)
                self.open.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
