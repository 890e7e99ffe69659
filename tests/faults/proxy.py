"""A TCP proxy on 127.0.0.1 in front of an RPC node that a test turns off and on: an RPC URL that flaps.

Off: the port refuses connections and every open connection is cut, as when a provider's load balancer drops
out. On: it listens on the same port again. ``latency`` (seconds) delays each chunk sent to the node, so a scan
through it takes long enough to be killed mid-range.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class FlappingProxy:
    def __init__(self, upstream_port: int, latency: float = 0.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.latency = latency
        self.flaps = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def on(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        """Refuse new connections and cut the open ones."""
        self.flaps += 1
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def close(self) -> None:
        self.off()
        self.flaps -= 1

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # turned off
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream, self.latency), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, 0.0), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, latency: float) -> None:
        try:
            while data := source.recv(65536):
                if latency:
                    time.sleep(latency)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open -= {source, target}
