"""A TCP proxy on loopback that the fault tests put between a process and its database.

It forwards both ways until told otherwise: :meth:`Proxy.cut` closes every
connection and refuses new ones (a database that went away), and
:meth:`Proxy.black_hole` accepts and swallows everything without a reply (a
database that hangs); :meth:`Proxy.restore` goes back to forwarding. It stops
itself after ``lifetime`` seconds whatever happens, so that a failing test
cannot leave it running.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

FORWARD, CUT, BLACK_HOLE = "forward", "cut", "black hole"


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", lifetime: float = 300.0) -> None:
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self._deadline = time.monotonic() + lifetime
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="test-db-proxy", daemon=True)
        self._thread.start()

    def url_for(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self.mode = CUT
        self._close_all()

    def black_hole(self) -> None:
        """Keep every connection open and answer nothing, new ones included."""
        self.mode = BLACK_HOLE

    def restore(self) -> None:
        """Forward again; connections held in a black hole are closed (their clients see an error)."""
        if self.mode == BLACK_HOLE:
            self._close_all()
        self.mode = FORWARD

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._close_all()
        self._listener.close()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _keep(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self) -> None:
        while not self._stopped.is_set() and time.monotonic() < self._deadline:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == CUT:
                client.close()
                continue
            if self.mode == BLACK_HOLE:
                self._keep(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._keep(client, server)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
        self._close_all()

    def _swallow(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            while sock.recv(65536):
                pass

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode == FORWARD:
                        peers[sock].sendall(data)
                    # In a black hole, what arrives is swallowed and nothing answers.
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()
