"""`tasker up` as a user runs it: the embedded default, driven over HTTP, stopped and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cli.embedded import free_port
from tests.conftest import ADMIN_KEY
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def call(method: str, url: str, body: Any = None, key: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Up:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up"], cwd=ROOT,
            env=clean_env(TASKER_DATA_DIR=str(data_dir), TASKER_API_PORT=str(port)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith("Press Ctrl-C"):
                self.key = (data_dir / "admin.key").read_text().strip()
                return
            if time.monotonic() > deadline:
                break
        code = self.stop()  # never leave a half-started service behind
        raise AssertionError(f"tasker up did not start (exit {code}):\n" + "".join(self.output))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        assert self.proc.stdout is not None
        self.output += self.proc.stdout.readlines()
        self.proc.stdout.close()
        return code


def test_tasker_up_serves_requests_stops_cleanly_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    up = Up(data_dir, port)
    try:
        banner = "".join(up.output)
        assert f"http://127.0.0.1:{port}" in banner and "curl" in banner
        assert call("POST", up.url + "/process", {"task": "sum2", "params": {"first": 1, "second": 1}})[0] == 401
        assert oct((data_dir / "admin.key").stat().st_mode & 0o777) == "0o600"
        status, answer = call("POST", up.url + "/process",
                              {"task": "sum2", "client_name": "sh", "params": {"first": 20, "second": 22}}, up.key)
        assert status == 201
        rid = answer["process"]["rid"]

        def finished() -> Any:
            _, body = call("GET", up.url + "/get_requests_status?client_name=sh", key=up.key)
            items = body["get_requests_status"]["requests"]
            return items and items[0]["status"] == "completed" and items[0]

        item = wait_for(finished, timeout=30, what="the request to complete")
        assert item["rid"] == rid and item["result"] == 42

        check = subprocess.run([sys.executable, "-m", "cli.main", "check"], cwd=ROOT, capture_output=True, text=True,
                               env=clean_env(TASKER_DATA_DIR=str(data_dir)), timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "database: ok" in check.stdout and "sqs: ok" in check.stdout
        runtime = json.loads((data_dir / "runtime.json").read_text())
    finally:
        code = up.stop()
    assert code == 0, "".join(up.output)
    assert "stopped" in "".join(up.output)
    assert not (data_dir / "runtime.json").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    with pytest.raises(OSError):  # the local SQS server is gone too
        urllib.request.urlopen(runtime["sqs_endpoint"], timeout=2)

    again = Up(data_dir, port)
    try:
        assert again.key == up.key  # the admin key is kept with the data
        _, body = call("GET", again.url + "/get_requests_status?client_name=sh", key=again.key)
        items = body["get_requests_status"]["requests"]
        assert [(i["rid"], i["result"]) for i in items] == [(rid, 42)]
        status, answer = call("POST", again.url + "/process",
                              {"task": "sum2", "client_name": "sh", "params": {"first": 20, "second": 22}}, again.key)
        assert status == 200 and answer["process"]["cached"] is True and answer["process"]["result"] == 42
    finally:
        assert again.stop() == 0


def test_check_fails_when_nothing_answers(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "check"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=clean_env(TASKER_DATA_DIR=str(tmp_path), TASKER_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                      TASKER_SQS_ENDPOINT=dead),
    )
    assert result.returncode == 1
    assert "database: FAILED" in result.stdout and "sqs: FAILED" in result.stdout


def test_commands_without_a_database_say_how_to_configure_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=clean_env(TASKER_DATA_DIR=str(tmp_path)),
    )
    assert result.returncode == 1
    assert "TASKER_DATABASE_URL" in result.stderr


def test_tasker_up_uses_the_configured_database_and_sqs_instead_of_starting_its_own(
    tmp_path: Path, database_url: str, sqs_server: Any
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = clean_env(TASKER_DATA_DIR=str(data_dir), TASKER_API_PORT=str(port),
                    TASKER_DATABASE_URL=database_url, TASKER_SQS_ENDPOINT=sqs_server.url,
                    TASKER_QUEUE_PREFIX=f"up{port}-")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C") or len(lines) > 200:
                break
        out = "".join(lines)
        assert "database: using TASKER_DATABASE_URL" in out
        assert f"sqs: using {sqs_server.url}" in out
        assert not (data_dir / "pgdata").exists()
        status, answer = call("POST", f"http://127.0.0.1:{port}/process",
                              {"task": "mult3", "client_name": "ext", "params": {"first": 2, "second": 3, "third": 7}}, ADMIN_KEY)
        assert status == 201

        def done() -> Any:
            _, body = call("GET", f"http://127.0.0.1:{port}/get_requests_status?client_name=ext", key=ADMIN_KEY)
            items = body["get_requests_status"]["requests"]
            return items and items[0]["status"] == "completed" and items[0]

        assert wait_for(done, timeout=30, what="the request")["result"] == 42
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        proc.stdout.close()
    assert proc.returncode == 0
