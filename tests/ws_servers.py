"""A small local WebSocket server that misbehaves the way a broken RPC WebSocket does, for the head-subscription
tests: ``drop`` answers the subscription then closes the connection, ``garbage`` answers it then sends text that
is not JSON, ``error`` answers ``eth_subscribe`` with a JSON-RPC error."""

from __future__ import annotations

import contextlib
import json
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


class BadWebSocket:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws) -> None:
        self.connections += 1
        request = json.loads(ws.recv())
        if self.mode == "error":
            ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "nope"}}))
            return
        ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x1"}))
        if self.mode == "garbage":
            ws.send("<html>this is not JSON</html>")
            with contextlib.suppress(ConnectionClosed):
                ws.recv()  # hold the connection until the client gives up on it
        # "drop": returning closes the connection

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
