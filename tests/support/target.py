"""A local HTTP target for HTTP-task tests: records every arrival and misbehaves on request.

Paths:
  /ok                      200 with a JSON body
  /status/<code>           answers <code>
  /fail/<n>/<key>          503 for the first <n> calls with this key, then 200
  /ratelimit/<key>         429 with Retry-After: 1 on the first call with this key, then 200
  /slow/<ms>               waits <ms> milliseconds, then 200
  /redirect?to=<url>       302 to <url>
  /chain/<n>               <n> redirects in a row, then 200
  /ready/<k>[/tag]         {"state": "pending"} until the k-th call, then {"state": "ready"}
  /echo[/<code>]           answers <code> (default 200) with the request's path,
                           headers and body (a target that reflects credentials back)
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Arrival:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many concurrent connections (the default backlog is 5)


class Target:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with target.lock:
                    target.arrivals.append(Arrival(time.time(), self.command, self.path, dict(self.headers), body))
                    target.in_flight += 1
                    target.max_in_flight = max(target.max_in_flight, target.in_flight)
                try:
                    code, headers, payload = target.answer(self.path, dict(self.headers), body)
                finally:
                    with target.lock:
                        target.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, dict[str, str], Any]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        with self.lock:
            self.calls[path] += 1
            count = self.calls[path]
        if parts[0] == "ok":
            return 200, {}, {"ok": True}
        if parts[0] == "status":
            return int(parts[1]), {}, {"status": int(parts[1])}
        if parts[0] == "fail":
            return (503, {}, {"try": count}) if count <= int(parts[1]) else (200, {}, {"try": count})
        if parts[0] == "ratelimit":
            return (429, {"Retry-After": "1"}, {}) if count == 1 else (200, {}, {"try": count})
        if parts[0] == "redirect":  # /redirect?to=<url or path>
            to = path.split("to=", 1)[1] if "to=" in path else "/ok"
            return 302, {"Location": to}, {}
        if parts[0] == "chain":  # /chain/<n>: n redirects, then 200
            n = int(parts[1])
            return (302, {"Location": f"/chain/{n - 1}"}, {}) if n > 0 else (200, {}, {"end": True})
        if parts[0] == "echo":
            code = int(parts[1]) if len(parts) > 1 else 200
            return code, {}, {"path": path, "headers": headers or {},
                              "body": body.decode("utf-8", errors="replace")}
        if parts[0] == "ready":  # /ready/<k>[/tag]: {"state": "pending"} until the k-th call, then "ready"
            k = int(parts[1])
            return 200, {}, {"state": "ready" if count >= k else "pending", "call": count}
        if parts[0] == "slow":
            time.sleep(int(parts[1]) / 1000)
            return 200, {}, {"slept_ms": int(parts[1])}
        return 404, {}, {"error": "unknown path"}

    def arrivals_for(self, prefix: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.path.startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
