"""Helpers shared by the benchmark scripts: start `tasker up` in a scratch data directory,
a keep-alive HTTP client, percentiles."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return percentile(values, 50)


def summarize(name: str, results: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the runs, saved with the runs to bench/results/<name>.json."""
    summary = {key: median([r[key] for r in results]) for key in results[0]}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"runs": results, "median": summary}, indent=2))
    return summary


@contextlib.contextmanager
def tasker_up(extra_env: dict[str, str] | None = None, data_dir: str | None = None) -> Iterator[dict[str, Any]]:
    """Run `tasker up` (embedded default unless the environment says otherwise) and yield its
    runtime info: api_url, database_url, sqs_endpoint."""
    tmp = tempfile.mkdtemp(prefix="tasker-bench-") if data_dir is None else data_dir
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env.update({"TASKER_DATA_DIR": tmp, "TASKER_API_PORT": str(port)})
    env.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            lines.append(line)
            sys.stderr.write("  [up] " + line)
            if line.startswith("Tasker is up"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("tasker up did not start:\n" + "".join(lines))
        else:
            raise RuntimeError("tasker up exited:\n" + "".join(lines))
        runtime = json.loads((Path(tmp) / "runtime.json").read_text())
        runtime["data_dir"] = tmp
        runtime["admin_key"] = (Path(tmp) / "admin.key").read_text().strip()
        yield runtime
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def tasker_with_target() -> Iterator[tuple[dict[str, Any], Recorder]]:
    """`tasker up` allowed to call a local :class:`Recorder` target (closed afterwards)."""
    target = Recorder()
    try:
        with tasker_up({"TASKER_HTTP_ALLOW": "127.0.0.1"}) as runtime:  # the target is local
            yield runtime, target
    finally:
        target.close()


def wait_recorded(cur: Any, client_name: str, n: int, start: float, timeout_s: float, poll_s: float) -> tuple[int, int]:
    """Poll until ``n`` tasks of ``client_name`` are completed or failed; (completed, failed)."""
    while True:
        cur.execute(
            """SELECT count(*) FILTER (WHERE t.status = 'completed'), count(*) FILTER (WHERE t.status = 'failed')
               FROM tasks t JOIN clients c ON c.id = t.client_id WHERE c.name = %s""", (client_name,))
        done, failed = cur.fetchone()
        if done + failed >= n:
            return done, failed
        if time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"only {done} of {n} recorded after {timeout_s:g} s")
        time.sleep(poll_s)


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        host_port = base_url.split("://", 1)[1]
        host, port = host_port.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json", **self.auth} if data else dict(self.auth)
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


class Recorder:
    """A local HTTP target on an event loop thread: records when each call arrives (by its
    `i` query parameter) and answers after `delay_ms` (also a query parameter)."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from aiohttp import web

        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        holder: dict[str, Any] = {}

        async def handle(request: web.Request) -> web.Response:
            now = time.time()
            self.count += 1
            key = request.query.get("i", "")
            self.arrivals.setdefault(key, now)
            delay = float(request.query.get("delay_ms", "0"))
            if delay:
                await asyncio.sleep(delay / 1000)
            return web.json_response({"ok": True})

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            holder["runner"] = runner

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{holder['port']}"
        self._runner = holder["runner"]

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def post_batch(client: Client, specs: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(specs), 100):
        status, body = client.request("POST", "/tasks/batch", {"tasks": specs[start : start + 100]})
        if status != 201:
            raise RuntimeError(f"batch refused: {status} {body}")
        ids += body["ids"]
    return ids
