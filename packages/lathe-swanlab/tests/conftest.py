"""Every test: SwanLab writes under the test's tmp dir, and no connection leaves this machine.

SwanLab 0.10 in offline/local mode makes no network call (checked by ``no_network``, which
fails a test on any connection or name lookup that is not the loopback). The Lark tests post
to a webhook server on 127.0.0.1.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            attempts.append(address)
            raise OSError(f"test blocked a network connection to {address}")
        return real_connect(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host not in LOOPBACK and host is not None:
            attempts.append(host)
            raise OSError(f"test blocked a name lookup of {host}")
        return real_lookup(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"network reached during the test: {attempts}"


@pytest.fixture(autouse=True)
def swanlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SwanLab's log dir (SWANLAB_LOG_DIR), with the working directory in the tmp dir too."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "swanlog"
    monkeypatch.setenv("SWANLAB_LOG_DIR", str(path))
    for var in ("SWANLAB_API_KEY", "SWANLAB_LARK_WEBHOOK_URL", "SWANLAB_LARK_SECRET", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    return path
