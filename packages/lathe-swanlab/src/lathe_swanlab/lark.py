"""Lark (Feishu) custom-bot notifications, signed as Lark's custom-bot API specifies.

The signature: HMAC-SHA256 with the key ``f"{timestamp}\\n{secret}"`` over an empty message,
base64-encoded, sent with the timestamp (seconds, as a string) in the JSON body. Lark
refuses a wrong signature or a timestamp more than an hour off. A failed notification
is one line on stderr; it never stops training.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


def sign(timestamp: int, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class LarkNotifier:
    webhook_url: str
    secret: str | None = None
    timeout_s: float = 10.0

    def payload(self, text: str, now: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if self.secret:
            timestamp = int(time.time() if now is None else now)
            body.update(timestamp=str(timestamp), sign=sign(timestamp, self.secret))
        return body

    def send(self, text: str) -> bool:
        """Post one message; True when Lark accepted it."""
        data = json.dumps(self.payload(text)).encode()
        request = urllib.request.Request(self.webhook_url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (the user's URL)
                reply = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"lathe: swanlab: Lark notification not sent: {type(exc).__name__}: {_reason(exc)}", file=sys.stderr)
            return False
        code = reply.get("code", reply.get("StatusCode", 0))
        if code:
            print(f"lathe: swanlab: Lark refused the notification: {reply.get('msg') or reply}", file=sys.stderr)
            return False
        return True


def _reason(exc: BaseException) -> str:
    """The failure without the URL (the webhook URL is a secret: its path is the bot's token)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


def message(event: str, cfg: Any, details: dict[str, Any]) -> str:
    """The text of one notification: what happened, which experiment, and the details."""
    lines = [f"lathe | {event}",
             f"Project: {cfg.swanlab_project}",
             f"Experiment: {cfg.swanlab_experiment_name or '(auto)'}"]
    if cfg.swanlab_workspace:
        lines.append(f"Workspace: {cfg.swanlab_workspace}")
    if cfg.swanlab_description:
        lines.append(f"Description: {cfg.swanlab_description}")
    lines += [f"{k}: {v}" for k, v in details.items() if v is not None]
    return "\n".join(lines)
