"""hub_model_id pushes the finished output through huggingface_hub, here to a stub Hub on
127.0.0.1 (HF_ENDPOINT) that records what it receives; the token is sent, never saved or logged."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config

TOKEN = "hf_STUBTOKEN0123456789"


class StubHub(BaseHTTPRequestHandler):
    """Just enough of the Hub API for create_repo, create_branch and upload_folder."""

    requests: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        endpoint = f"http://{self.headers['Host']}"
        if self.path.startswith("/api/repos/create"):
            repo = json.loads(body)
            return self._reply({"url": f"{endpoint}/{repo.get('organization', 'user')}/{repo['name']}"})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                          for f in files]})
        if "/commit/" in self.path:
            repo = self.path.split("/api/models/", 1)[1].split("/commit/", 1)[0]
            return self._reply({"commitUrl": f"{endpoint}/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40})
        return self._reply({})

    do_PUT = do_POST


@pytest.fixture
def hub():  # type: ignore[no-untyped-def]
    StubHub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", StubHub.requests
    server.shutdown()


def _committed_files(requests: list[dict[str, Any]]) -> dict[str, bytes]:
    files = {}
    for request in requests:
        if "/commit/" in request["path"]:
            for line in request["body"].decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
    return files


def test_hub_model_id_pushes_the_output_with_the_token(tmp_path: Path, hub) -> None:  # type: ignore[no-untyped-def]
    endpoint, requests = hub
    cfg = base_config(tmp_path, max_steps=2, save_steps=1, hub_model_id="me/tiny", hub_revision="trial",
                      hub_private_repo=True, hub_token=TOKEN)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "OMP_NUM_THREADS": "1",
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    run = subprocess.run([sys.executable, "-m", "lathe", "train", str(path)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pushed" in run.stderr and TOKEN not in run.stdout + run.stderr

    paths = [r["path"] for r in requests]
    assert paths[0].startswith("/api/repos/create")
    created = json.loads(requests[0]["body"])
    assert (created["organization"], created["name"]) == ("me", "tiny")
    assert created.get("visibility") == "private" or created.get("private") is True  # hub_private_repo
    assert any(p.startswith("/api/models/me/tiny/branch/trial") for p in paths)
    assert any(p.startswith("/api/models/me/tiny/commit/trial") for p in paths)
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in requests)

    out = tmp_path / "out"
    files = _committed_files(requests)
    assert files["model.safetensors"] == (out / "model.safetensors").read_bytes()
    assert {"config.json", "tokenizer.json", "lathe_config.yaml"} <= files.keys()
    assert not [f for f in files if f.startswith(("checkpoint-", ".staging", ".replaced"))]
    assert (out / "checkpoint-2").is_dir()  # checkpoints existed, and were not uploaded
    for file in [p for p in tmp_path.rglob("*") if p.is_file() and p != path]:  # all but our own config
        assert TOKEN.encode() not in file.read_bytes(), file


def test_push_settings_need_a_repo_and_offline_is_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lathe.errors import LatheError
    from lathe.train.hub import push_to_hub

    with pytest.raises(ConfigError, match="hub_revision need hub_model_id"):
        validate(base_config(tmp_path, hub_revision="dev"), Plugins())
    with pytest.raises(ConfigError, match="hub_strategy"):
        validate(base_config(tmp_path, hub_model_id="me/x", hub_strategy="every_save"), Plugins())
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cfg = validate(base_config(tmp_path, hub_model_id="me/x"), Plugins())
    with pytest.raises(LatheError, match="HF_HUB_OFFLINE is set"):
        push_to_hub(cfg, tmp_path)
