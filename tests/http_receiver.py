"""Real HTTP servers on 127.0.0.1 (free port, own thread): a receiver for webhook tests that answers from a
script, the project itself (``live_wsgi_server``), and a JSON-RPC node that misbehaves or proxies to anvil
(``FakeRPC``, the ``fake_rpc`` fixture)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server stops): the client must time out


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int = 0  # the sender's local port: which process sent it (tests/processes.pid_of_client)


class Receiver:
    """``replies`` are used in order; the last one repeats. ``requests`` lists what arrived.

    ``hold(n)``: the next ``n`` requests are held unanswered (listed in ``held``) until ``release_held()``; then
    they get their reply, if their sender is still there to read it.
    """

    def __init__(self, *replies: Reply):
        self.replies = list(replies) or [Reply()]
        self.requests: list[Received] = []
        self.arrived = threading.Event()
        self._release = threading.Event()
        self.held: list[Received] = []
        self._to_hold = 0
        self._held_release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                    self.client_address[1])  # fmt: skip
                receiver.requests.append(received)
                receiver.arrived.set()
                if receiver._take_hold(received):
                    receiver._held_release.wait(60)
                reply = receiver.replies[min(len(receiver.requests), len(receiver.replies)) - 1]
                if reply.hang:
                    receiver._release.wait(30)
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the sender is gone (killed while we held its request)
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._lock = threading.Lock()

    def hold(self, n: int = 1) -> None:
        """Hold the next ``n`` requests unanswered until :meth:`release_held`."""
        with self._lock:
            self.held, self._to_hold = [], n
            self._held_release.clear()

    def release_held(self) -> None:
        with self._lock:
            self._to_hold = 0
        self._held_release.set()

    def _take_hold(self, received: Received) -> bool:
        with self._lock:
            if self._to_hold <= 0:
                return False
            self._to_hold -= 1
            self.held.append(received)
            return True

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class _Server(ThreadedWSGIServer):
    # Django's default listen backlog (10) resets connections when 50 clients connect at once.
    request_queue_size = 256


@contextmanager
def live_wsgi_server() -> Iterator[str]:
    """The project served over real HTTP by a threaded server in this process (one thread per request,
    each with its own database connection, closed after the request); yields the base URL."""
    server = _Server(("127.0.0.1", 0), _QuietHandler)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FakeRPC:
    """A local HTTP server that answers every request the same bad way (or with a chain id of its own)."""

    def __init__(self, mode: str, chain_id: int = 31337, upstream: str = "", max_log_range: int = 0) -> None:
        self.mode, self.chain_id, self.hits = mode, chain_id, 0
        self.upstream, self.max_log_range = upstream, max_log_range
        self.methods: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                fake.hits += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.mode == "429":
                    return self._answer(429, b"slow down", {"Retry-After": "30"})
                if fake.mode == "500":
                    return self._answer(500, b"internal error")
                if fake.mode == "garbage":
                    return self._answer(200, b"<html>gateway</html>")
                if fake.mode == "proxy":
                    return self._answer(200, json.dumps(fake.proxy(body)).encode())
                if fake.mode == "sleep":
                    time.sleep(2)  # the client has given up by now: close without an answer
                    self.close_connection = True
                    return None
                # mode "chain": a node of another chain
                items = body if isinstance(body, list) else [body]
                answer = [{"jsonrpc": "2.0", "id": i["id"], "result": hex(fake.chain_id)} for i in items]
                return self._answer(200, json.dumps(answer).encode())

            def _answer(self, status, payload, headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def proxy(self, body):
        """Forward to the real node, refusing eth_getLogs over more than ``max_log_range`` blocks."""
        items = body if isinstance(body, list) else [body]
        self.methods += [i["method"] for i in items]
        refused = {}
        for item in items:
            if item["method"] == "eth_getLogs" and self.max_log_range:
                query = item["params"][0]
                if int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > self.max_log_range:
                    refused[item["id"]] = {"code": -32602, "message": "query returned more than 10000 results"}
        forward = [i for i in items if i["id"] not in refused]
        answers = requests.post(self.upstream, json=forward, timeout=30).json() if forward else []
        answers += [{"jsonrpc": "2.0", "id": i, "error": e} for i, e in refused.items()]
        return answers

    def close(self):
        self.server.shutdown()
        self.server.server_close()
