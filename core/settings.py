"""One typed settings object per process, built from ``TASKER_*`` environment variables.

Every default lives here, next to its documentation; ``tasker config`` prints the table and the
README repeats it. When no database URL or SQS endpoint is set, commands other than ``tasker
up`` look for the ``runtime.json`` that a running ``tasker up`` wrote into the data directory,
so ``tasker worker`` or ``tasker check`` talk to the same embedded service.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfigError

RUNTIME_FILE = "runtime.json"


@dataclasses.dataclass(frozen=True)
class Option:
    env: str
    default: Any
    kind: type
    help: str


#: name -> Option; the single place where settings and their defaults are documented.
OPTIONS: dict[str, Option] = {
    "database_url": Option("TASKER_DATABASE_URL", None, str, "PostgreSQL URL (postgresql://user@host:port/db). Unset: `tasker up` starts an embedded PostgreSQL."),
    "sqs_endpoint": Option("TASKER_SQS_ENDPOINT", None, str, "SQS endpoint URL. Unset: `tasker up` starts a local SQS server; other commands use the one `tasker up` started, else AWS."),
    "sqs_region": Option("TASKER_SQS_REGION", "us-east-1", str, "AWS region of the SQS queues."),
    "queue_prefix": Option("TASKER_QUEUE_PREFIX", "tasker-", str, "Prefix of every SQS queue name (one queue and one dead-letter queue per task type)."),
    "data_dir": Option("TASKER_DATA_DIR", ".tasker", str, "Where `tasker up` keeps the embedded PostgreSQL data, logs and runtime.json."),
    "secrets_dir": Option("TASKER_SECRETS_DIR", "secret", str, "Directory of credential files (aws_credentials in the AWS INI format)."),
    "api_host": Option("TASKER_API_HOST", "127.0.0.1", str, "Address the API binds to."),
    "api_port": Option("TASKER_API_PORT", 5000, int, "Port of the API."),
    "api_server": Option("TASKER_API_SERVER", "granian", str, "HTTP server of the API: granian (lean, the default) or gunicorn."),
    "api_workers": Option("TASKER_API_WORKERS", 0, int, "Worker processes of the API server (0: one per two cores)."),
    "api_threads": Option("TASKER_API_THREADS", 6, int, "Threads per API worker process."),
    "insecure_no_auth": Option("TASKER_INSECURE_NO_AUTH", 0, int, "1 turns API keys off (only with a loopback TASKER_API_HOST; logged as a warning on every start)."),
    "admin_key_file": Option("TASKER_ADMIN_KEY_FILE", "", str, "A file holding an admin API key the API adopts at start (the compose stack's bootstrap key)."),
    "max_body_bytes": Option("TASKER_MAX_BODY_BYTES", 262144, int, "Largest request body the API accepts (413 above)."),
    "max_url_length": Option("TASKER_MAX_URL_LENGTH", 4000, int, "Longest request path and query string the API accepts (414 above; at most 8000)."),
    "max_request_headers": Option("TASKER_MAX_REQUEST_HEADERS", 64, int, "Most request headers the API accepts (431 above; at most 1000, and granian itself refuses more than 100 with a bare 431)."),
    "max_header_bytes": Option("TASKER_MAX_HEADER_BYTES", 16384, int, "Largest total size of a request's headers the API accepts (431 above; at most 65536)."),
    "rate_limit_per_s": Option("TASKER_RATE_LIMIT_PER_S", 1000.0, float, "Requests per second one client may make, across every API process (429 with Retry-After above; 0 turns the limit off). `tasker clients limits` sets it per client."),
    "rate_limit_burst": Option("TASKER_RATE_LIMIT_BURST", 2000, int, "Requests one client may make at once above its rate (the size of its token bucket)."),
    "quota_active_tasks": Option("TASKER_QUOTA_ACTIVE_TASKS", 100000, int, "Pending and scheduled (not finished) tasks one client may have (429 above; 0: unlimited). `tasker clients limits` sets it per client."),
    "workers": Option("TASKER_WORKERS", 0, int, "Tasker processes started by `tasker up` (0: one per two cores; one tasker runs hundreds of tasks a second)."),
    "worker_concurrency": Option("TASKER_WORKER_CONCURRENCY", 32, int, "Tasks one tasker process executes at once."),
    "http_concurrency": Option("TASKER_HTTP_CONCURRENCY", 200, int, "HTTP calls one tasker process keeps in flight at once."),
    "http_timeout_max_s": Option("TASKER_HTTP_TIMEOUT_MAX_S", 300.0, float, "Longest timeout_s an HTTP task may ask for (the default is 30 s)."),
    "http_allow": Option("TASKER_HTTP_ALLOW", "", str, "CIDRs and host names HTTP tasks may call although they are loopback, private or otherwise internal."),
    "http_excerpt_bytes": Option("TASKER_HTTP_EXCERPT_BYTES", 65536, int, "How much of each HTTP response body is kept with its attempt."),
    "queues": Option("TASKER_QUEUES", "", str, "Comma-separated task types a tasker consumes (empty: all)."),
    "queue_window": Option("TASKER_QUEUE_WINDOW", 2000, int, "Most runs of one type waiting on SQS at once; the rest of the backlog waits in PostgreSQL."),
    "runs_per_message": Option("TASKER_RUNS_PER_MESSAGE", 100, int, "Most runs named by one SQS message."),
    "lease_seconds": Option("TASKER_LEASE_SECONDS", 60, int, "Lease of a claimed run, and the queues' visibility timeout; extended while the run executes."),
    "poll_seconds": Option("TASKER_POLL_SECONDS", 10, int, "SQS long-poll wait of a tasker (1-20)."),
    "dispatch_linger_ms": Option("TASKER_DISPATCH_LINGER_MS", 200, int, "Least time between two sends of one type by one dispatcher: under load, runs share messages."),
    "receive_linger_ms": Option("TASKER_RECEIVE_LINGER_MS", 200, int, "Least time between two receives of one queue by a busy tasker: under load, messages are taken ten at a time."),
    "dispatch_lead_s": Option("TASKER_DISPATCH_LEAD_S", 2.0, float, "Scheduled runs are sent this many seconds ahead; the tasker holds them until they are due."),
    "misfire_grace_s": Option("TASKER_MISFIRE_GRACE_S", 60.0, float, "A run later than this was missed (the service was down): its task's misfire policy applies."),
    "min_interval_s": Option("TASKER_MIN_INTERVAL_S", 1.0, float, "Shortest interval a periodic task may have."),
    "controller_interval": Option("TASKER_CONTROLLER_INTERVAL", 0.2, float, "Seconds between two passes of the controller's dispatch loop."),
    "redispatch_after": Option("TASKER_REDISPATCH_AFTER", 120, int, "Seconds after which a dispatched run whose queue is empty is sent again (its message was lost)."),
    "max_receives": Option("TASKER_MAX_RECEIVES", 5, int, "Receives of one message before SQS moves it to the dead-letter queue."),
    "retries": Option("TASKER_RETRIES", 3, int, "Default retries of a failed run."),
    "retry_base_s": Option("TASKER_RETRY_BASE_S", 1.0, float, "Default base of the exponential retry backoff."),
    "retry_max_s": Option("TASKER_RETRY_MAX_S", 300.0, float, "Default cap of the retry backoff."),
    "task_modules": Option("TASKER_TASK_MODULES", "", str, "Comma-separated Python modules that register extra task types."),
    "log_level": Option("TASKER_LOG_LEVEL", "INFO", str, "DEBUG, INFO, WARNING or ERROR."),
    "log_format": Option("TASKER_LOG_FORMAT", "json", str, "json (one object per line) or text."),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    sqs_endpoint: str | None = None
    sqs_region: str = "us-east-1"
    queue_prefix: str = "tasker-"
    data_dir: str = ".tasker"
    secrets_dir: str = "secret"
    api_host: str = "127.0.0.1"
    api_port: int = 5000
    api_server: str = "granian"
    api_workers: int = 0
    api_threads: int = 6
    insecure_no_auth: int = 0
    admin_key_file: str = ""
    max_body_bytes: int = 262144
    max_url_length: int = 4000
    max_request_headers: int = 64
    max_header_bytes: int = 16384
    rate_limit_per_s: float = 1000.0
    rate_limit_burst: int = 2000
    quota_active_tasks: int = 100000
    workers: int = 0
    worker_concurrency: int = 32
    http_concurrency: int = 200
    http_timeout_max_s: float = 300.0
    http_allow: str = ""
    http_excerpt_bytes: int = 65536
    queues: str = ""
    queue_window: int = 2000
    runs_per_message: int = 100
    lease_seconds: int = 60
    poll_seconds: int = 10
    dispatch_linger_ms: int = 200
    receive_linger_ms: int = 200
    dispatch_lead_s: float = 2.0
    misfire_grace_s: float = 60.0
    min_interval_s: float = 1.0
    controller_interval: float = 0.2
    redispatch_after: int = 120
    max_receives: int = 5
    retries: int = 3
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    task_modules: str = ""
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``TASKER_*`` variable; ``overrides`` (CLI flags) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, opt in OPTIONS.items():
            raw = env.get(opt.env)
            if raw is None or raw == "":
                continue
            values[name] = _convert(name, opt, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 1 <= self.poll_seconds <= 20:
            raise ConfigError("TASKER_POLL_SECONDS must be between 1 and 20 (SQS long-poll limit)")
        if self.runs_per_message < 1 or self.queue_window < 1:
            raise ConfigError("TASKER_RUNS_PER_MESSAGE and TASKER_QUEUE_WINDOW must be at least 1")
        if self.lease_seconds < 2:
            raise ConfigError("TASKER_LEASE_SECONDS must be at least 2")
        if self.dispatch_lead_s < 0:
            raise ConfigError("TASKER_DISPATCH_LEAD_S must not be negative")
        if self.insecure_no_auth and self.api_host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError("TASKER_INSECURE_NO_AUTH needs a loopback TASKER_API_HOST (127.0.0.1, ::1 or localhost)")
        if self.api_server not in ("granian", "gunicorn"):
            raise ConfigError("TASKER_API_SERVER must be granian or gunicorn")
        if self.rate_limit_per_s < 0 or self.rate_limit_burst < 1 or self.quota_active_tasks < 0:
            raise ConfigError(
                "TASKER_RATE_LIMIT_PER_S and TASKER_QUOTA_ACTIVE_TASKS must not be negative (0: off), "
                "TASKER_RATE_LIMIT_BURST must be at least 1"
            )
        if not (1 <= self.max_url_length <= 8000 and 1 <= self.max_request_headers <= 1000
                and 1 <= self.max_header_bytes <= 65536):
            raise ConfigError("TASKER_MAX_URL_LENGTH must be 1-8000, TASKER_MAX_REQUEST_HEADERS 1-1000 and "
                              "TASKER_MAX_HEADER_BYTES 1-65536 (the HTTP servers' own limits lie above them)")
        if self.log_format not in ("json", "text"):
            raise ConfigError("TASKER_LOG_FORMAT must be json or text")

    def with_runtime(self) -> Settings:
        """Fill an unset database URL / SQS endpoint from a running ``tasker up``."""
        if self.database_url and self.sqs_endpoint:
            return self
        runtime = read_runtime(self.data_dir)
        if not runtime:
            return self
        return dataclasses.replace(
            self,
            database_url=self.database_url or runtime.get("database_url"),
            sqs_endpoint=self.sqs_endpoint or runtime.get("sqs_endpoint"),
        )

    def require_database(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "no database: set TASKER_DATABASE_URL, or start `tasker up` with the same TASKER_DATA_DIR"
            )
        return self.database_url

    @property
    def lead_s(self) -> float:
        """How far ahead scheduled runs are sent: never more than half a lease, so a run is
        never claimed so early that its lease could lapse before it is due."""
        return min(self.dispatch_lead_s, self.lease_seconds / 2)

    @property
    def api_processes(self) -> int:
        return self.api_workers if self.api_workers > 0 else max(1, (os.cpu_count() or 2) // 2)

    @property
    def tasker_processes(self) -> int:
        return self.workers if self.workers > 0 else max(1, (os.cpu_count() or 2) // 2)

    @property
    def queue_list(self) -> list[str]:
        return [q.strip() for q in self.queues.split(",") if q.strip()]

    @property
    def task_module_list(self) -> list[str]:
        return [m.strip() for m in self.task_modules.split(",") if m.strip()]

    def env(self) -> dict[str, str]:
        """These settings as ``TASKER_*`` variables, for child processes."""
        out: dict[str, str] = {}
        for name, opt in OPTIONS.items():
            value = getattr(self, name)
            if value is not None:
                out[opt.env] = str(value)
        return out


def _convert(name: str, opt: Option, raw: str) -> Any:
    try:
        if opt.kind is int:
            return int(raw)
        if opt.kind is float:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{opt.env}={raw!r} is not a valid {opt.kind.__name__}") from exc
    return raw


def runtime_path(data_dir: str) -> Path:
    return Path(data_dir) / RUNTIME_FILE


def read_runtime(data_dir: str) -> dict[str, Any]:
    path = runtime_path(data_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_runtime(data_dir: str, data: dict[str, Any]) -> None:
    path = runtime_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def remove_runtime(data_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        runtime_path(data_dir).unlink()


def settings_table() -> str:
    """The configuration table, in Markdown (used by the README and ``tasker config``)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for opt in OPTIONS.values():
        default = "(unset)" if opt.default is None else "(empty)" if opt.default == "" else f"`{opt.default}`"
        rows.append(f"| `{opt.env}` | {default} | {opt.help} |")
    return "\n".join(rows)
