"""A Lark custom-bot webhook on 127.0.0.1 that checks signatures as Lark does and records what it accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    url: str
    secret: str | None
    accepted: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def verify(self, body: dict[str, Any]) -> str | None:
        """Lark's rule: sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")), timestamp within an hour."""
        if self.secret is None:
            return None
        try:
            timestamp = int(body["timestamp"])
        except (KeyError, ValueError):
            return "missing timestamp"
        if abs(time.time() - timestamp) > 3600:
            return "timestamp is not within one hour from current time"
        key = f"{timestamp}\n{self.secret}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return None if hmac.compare_digest(expected, str(body.get("sign", ""))) else "sign match fail"


@contextmanager
def lark_webhook(secret: str | None) -> Iterator[Webhook]:
    hook = Webhook("", secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            problem = hook.verify(body)
            if problem:
                hook.rejected.append(body)
                reply = {"code": 19021, "msg": problem, "data": {}}
            else:
                hook.accepted.append(body["content"]["text"])
                reply = {"code": 0, "msg": "success", "data": {}}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_port}/open-apis/bot/v2/hook/TOKEN-abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
