"""`tasker api` under both HTTP servers: granian (default) and gunicorn (the compose file's)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.embedded import free_port
from core.settings import Settings
from tests.acceptance.test_up import call
from tests.conftest import ADMIN_KEY
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_tasker_api_serves_json_under_each_server(settings: Settings, server: str, tmp_path: Path) -> None:
    port = free_port()
    s = dataclasses.replace(settings, api_port=port, api_server=server, api_workers=2, api_threads=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env.update(s.env())
    env["PYTHONPATH"] = str(ROOT)
    with (tmp_path / "api.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            try:
                return call("GET", base + "/readyz")[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=30, what=f"{server} to serve")
        status, body = call("POST", base + "/process", {"task": "sum2", "client_name": server, "params": {"first": 1, "second": 2}})
        assert status == 401 and "API key" in body["error"]["message"]
        status, body = call("POST", base + "/process", {"task": "sum2", "client_name": server, "params": {"first": 1, "second": 2}}, ADMIN_KEY)
        assert status == 201 and body["process"]["status"] == "queued"
        status, body = call("POST", base + "/process", {"task": "nope", "client_name": server}, ADMIN_KEY)
        assert status == 400 and "unknown task" in body["error"]["message"]
        status, body = call("GET", base + "/missing", key=ADMIN_KEY)
        assert status == 404 and "error" in body
        # the API's own limits answer in JSON: the server's lie above them
        status, body = call("GET", base + "/tasks?x=" + "a" * 5000, key=ADMIN_KEY)
        assert status == 414 and "TASKER_MAX_URL_LENGTH" in body["error"]["message"]
        status, body = call("GET", base + "/tasks", key=ADMIN_KEY, headers={f"X-H{i}": "1" for i in range(80)})
        assert status == 431 and "TASKER_MAX_REQUEST_HEADERS" in body["error"]["message"]
        status, body = call("GET", base + "/tasks", key=ADMIN_KEY, headers={"X-Big": "b" * 20000})
        assert status == 431 and "TASKER_MAX_HEADER_BYTES" in body["error"]["message"]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("tasker api did not stop on SIGTERM:\n" + (tmp_path / "api.log").read_text()) from None
    assert proc.returncode == 0, (tmp_path / "api.log").read_text()
