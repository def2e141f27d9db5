"""``tasker up``: the whole service in one command.

Starts (unless configured) an embedded PostgreSQL and a local SQS server, applies the
migrations, then runs the API, a controller and the taskers as separate child processes,
restarting any that dies. Ctrl-C or SIGTERM stops everything it started, in reverse order;
data stays under the data directory for the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from core.errors import ConfigError
from core.settings import Settings, remove_runtime, write_runtime

log = logging.getLogger("tasker.up")


def say(line: str) -> None:
    """Progress for the person at the terminal (logs go to files under the data dir)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclasses.dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log_file: IO[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.log_file:
            self.log_file.close()


def up(settings: Settings) -> int:
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    lock = open(data_dir / "up.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"another `tasker up` is already running on {data_dir}") from None

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from cli.embedded import EmbeddedPostgres, LocalSQS

    pg: EmbeddedPostgres | None = None
    sqs: LocalSQS | None = None
    children: list[Child] = []
    try:
        database_url = settings.database_url
        if database_url:
            say("database: using TASKER_DATABASE_URL")
        else:
            say(f"database: starting embedded PostgreSQL in {data_dir / 'pgdata'} ...")
            pg = EmbeddedPostgres(data_dir)
            database_url = pg.start()
            say(f"database: embedded PostgreSQL on 127.0.0.1:{pg.port}")
        sqs_endpoint = settings.sqs_endpoint
        if sqs_endpoint:
            say(f"sqs: using {sqs_endpoint}")
        else:
            sqs = LocalSQS(log_path=data_dir / "logs" / "sqs.log")
            sqs_endpoint = sqs.start()
            say(f"sqs: local SQS server on {sqs_endpoint}")

        from db.migrate import current, upgrade

        upgrade(database_url)
        say(f"database: schema at revision {current(database_url)}")
        admin_key = _admin_key(data_dir, database_url)

        settings = dataclasses.replace(settings, database_url=database_url, sqs_endpoint=sqs_endpoint)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
        env.update(settings.env())
        here = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "") if "PYTHONPATH" in env else here
        base = [sys.executable, "-m", "cli.main"]
        logs = data_dir / "logs"
        children = [Child("api", base + ["api"], logs / "api.log"),
                    Child("controller", base + ["controller"], logs / "controller.log")]
        children += [Child(f"tasker-{i + 1}", base + ["worker"], logs / f"tasker-{i + 1}.log")
                     for i in range(settings.tasker_processes)]
        for child in children:
            child.start(env)
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        write_runtime(str(data_dir), {
            "database_url": database_url, "sqs_endpoint": sqs_endpoint, "api_url": api_url,
            "pid": os.getpid(),
        })
        if not _wait_ready(api_url, children, stop):
            if stop.is_set():
                return 0
            raise ConfigError(f"the API did not become ready; see {logs / 'api.log'}")
        say("")
        say(f"Tasker is up: {api_url}  ({settings.tasker_processes} tasker(s), logs in {logs})")
        auth = "" if settings.insecure_no_auth else f' -H "Authorization: Bearer $(cat {data_dir / "admin.key"})"'
        if settings.insecure_no_auth:
            say("WARNING: API keys are OFF (--insecure-no-auth); anyone who can reach the port can do anything")
        else:
            say(f"Admin API key: {admin_key}  (saved in {data_dir / 'admin.key'}; `tasker clients create NAME` makes more)")
        say("Try:")
        say(f"  curl -s{auth} -X POST {api_url}/process -d '{{\"task\": \"sum2\", \"client_name\": \"admin\", \"params\": {{\"first\": 1, \"second\": 2}}}}'")
        say(f"  curl -s{auth} -X GET {api_url}/get_requests_status -d '{{\"client_name\": \"admin\"}}'")
        say("Press Ctrl-C to stop.")
        _supervise(children, env, stop)
        return 0
    finally:
        say("stopping ...")
        deadline = time.monotonic() + 30
        for child in reversed(children):
            child.terminate()
        for child in reversed(children):
            child.wait(deadline)
        if sqs is not None:
            sqs.stop()
        if pg is not None and pg.started_here:
            pg.stop()
        remove_runtime(str(data_dir))
        say("stopped; data kept in " + str(data_dir))
        lock.close()


def _admin_key(data_dir: Path, database_url: str) -> str:
    """The admin key of this data directory: created on first start, kept in admin.key (0600)."""
    path = data_dir / "admin.key"
    if path.exists():
        return path.read_text().strip()
    from db.engine import make_engine, transaction
    from db.store import clients

    engine = make_engine(database_url, pool_size=1)
    with transaction(engine) as conn:
        try:
            issued = clients.create(conn, "admin", admin=True)
        except ValueError:
            # the database already has an admin with a key (a shared database): never touch
            # it; this data directory gets an admin client of its own
            import secrets

            issued = clients.create(conn, f"admin-{secrets.token_hex(3)}", admin=True)
    engine.dispose()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.key + "\n")
    return issued.key


def _wait_ready(api_url: str, children: list[Child], stop: threading.Event, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        if not children[0].alive():
            return False
        try:
            with urllib.request.urlopen(api_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _supervise(children: list[Child], env: dict[str, str], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for child in children:
            if child.alive():
                continue
            code = child.proc.returncode if child.proc else None
            child.restarts += 1
            delay = min(30.0, 0.5 * 2 ** min(child.restarts, 6))
            say(f"{child.name} exited (code {code}); restarting in {delay:.1f}s (see {child.log_path})")
            if stop.wait(delay):
                return
            child.start(env)
