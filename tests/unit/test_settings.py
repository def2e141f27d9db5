"""Unit tests of ``core/settings.py``: reading ``TASKER_*`` variables, validation, runtime.json."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from core import settings as settings_module
from core.errors import ConfigError
from core.settings import OPTIONS, Settings, settings_table, write_runtime

# --- from_env ------------------------------------------------------------------------------


def test_from_an_empty_environment_every_setting_has_its_default() -> None:
    assert Settings.from_env(env={}) == Settings()


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        (
            "TASKER_DATABASE_URL",
            "postgresql://u@h:5432/db",
            "database_url",
            "postgresql://u@h:5432/db",
        ),
        ("TASKER_SQS_ENDPOINT", "http://127.0.0.1:9324", "sqs_endpoint", "http://127.0.0.1:9324"),
        ("TASKER_SQS_REGION", "eu-west-1", "sqs_region", "eu-west-1"),
        ("TASKER_QUEUE_PREFIX", "test-", "queue_prefix", "test-"),
        ("TASKER_API_PORT", "8080", "api_port", 8080),
        ("TASKER_API_WORKERS", "-3", "api_workers", -3),
        ("TASKER_WORKERS", " 4 ", "workers", 4),
        ("TASKER_POLL_SECONDS", "20", "poll_seconds", 20),
        ("TASKER_CONTROLLER_INTERVAL", "1.5", "controller_interval", 1.5),
        ("TASKER_CONTROLLER_INTERVAL", "2", "controller_interval", 2.0),
        ("TASKER_RETRY_BASE_S", "0.25", "retry_base_s", 0.25),
        ("TASKER_RETRY_MAX_S", "1e3", "retry_max_s", 1000.0),
        ("TASKER_QUEUES", "sum2, mult3", "queues", "sum2, mult3"),
        ("TASKER_LOG_FORMAT", "text", "log_format", "text"),
    ],
)
def test_from_env_reads_tasker_variables_with_their_types(
    variable: str, raw: str, field: str, expected: Any
) -> None:
    value = getattr(Settings.from_env(env={variable: raw}), field)
    assert value == expected
    assert type(value) is type(expected)


def test_from_env_ignores_variables_that_are_not_tasker_settings() -> None:
    env = {"API_PORT": "1", "TASKER_UNKNOWN": "x", "PATH": "/bin"}
    assert Settings.from_env(env=env) == Settings()


def test_from_env_without_a_mapping_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKER_API_PORT", "6123")
    assert Settings.from_env().api_port == 6123


@pytest.mark.parametrize(
    ("env", "overrides", "field", "expected"),
    [
        ({"TASKER_POLL_SECONDS": "5"}, {"poll_seconds": 7}, "poll_seconds", 7),
        ({"TASKER_API_PORT": "8080"}, {"api_port": 9090}, "api_port", 9090),
        ({}, {"api_host": "0.0.0.0"}, "api_host", "0.0.0.0"),
        ({"TASKER_API_PORT": "8080"}, {"api_port": None}, "api_port", 8080),
        ({}, {"workers": None}, "workers", 0),
        ({"TASKER_QUEUES": "sum2"}, {"queues": ""}, "queues", ""),
    ],
)
def test_overrides_win_over_the_environment_unless_none(
    env: dict[str, str], overrides: dict[str, Any], field: str, expected: Any
) -> None:
    assert getattr(Settings.from_env(env=env, **overrides), field) == expected


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("TASKER_API_PORT", "api_port"),
        ("TASKER_CONTROLLER_INTERVAL", "controller_interval"),
        ("TASKER_QUEUE_PREFIX", "queue_prefix"),
        ("TASKER_DATABASE_URL", "database_url"),
        ("TASKER_LOG_LEVEL", "log_level"),
    ],
)
def test_empty_strings_in_the_environment_are_ignored(variable: str, field: str) -> None:
    assert getattr(Settings.from_env(env={variable: ""}), field) == getattr(Settings(), field)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("TASKER_API_PORT", "eighty"),
        ("TASKER_API_PORT", "80.5"),
        ("TASKER_WORKERS", "1e3"),
        ("TASKER_POLL_SECONDS", "ten"),
        ("TASKER_CONTROLLER_INTERVAL", "fast"),
        ("TASKER_RETRY_BASE_S", "1s"),
    ],
)
def test_malformed_number_raises_config_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env={variable: raw})
    assert variable in str(exc.value)
    assert repr(raw) in str(exc.value)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TASKER_POLL_SECONDS": "0"}, "TASKER_POLL_SECONDS"),
        ({"TASKER_POLL_SECONDS": "21"}, "TASKER_POLL_SECONDS"),
        ({"TASKER_LEASE_SECONDS": "1"}, "TASKER_LEASE_SECONDS"),
        ({"TASKER_LOG_FORMAT": "xml"}, "TASKER_LOG_FORMAT"),
    ],
)
def test_from_env_validates_the_result(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env=env)


# --- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize("poll_seconds", [1, 2, 10, 19, 20])
def test_validate_accepts_poll_seconds_within_the_sqs_long_poll_limit(poll_seconds: int) -> None:
    Settings(poll_seconds=poll_seconds).validate()


@pytest.mark.parametrize("poll_seconds", [-1, 0, 21, 60])
def test_validate_rejects_poll_seconds_outside_1_to_20(poll_seconds: int) -> None:
    with pytest.raises(ConfigError, match="TASKER_POLL_SECONDS must be between 1 and 20"):
        Settings(poll_seconds=poll_seconds).validate()


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"runs_per_message": 0}, "TASKER_RUNS_PER_MESSAGE"),
        ({"queue_window": 0}, "TASKER_QUEUE_WINDOW"),
        ({"lease_seconds": 1}, "TASKER_LEASE_SECONDS"),
        ({"log_format": "yaml"}, "TASKER_LOG_FORMAT"),
    ],
)
def test_validate_rejects_other_out_of_range_settings(
    changes: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings(**changes).validate()


# --- with_runtime ----------------------------------------------------------------------------

RUNTIME = {
    "database_url": "postgresql://rt@127.0.0.1:5433/tasker",
    "sqs_endpoint": "http://127.0.0.1:9999",
}


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        ({}, RUNTIME),
        (
            {"database_url": "postgresql://mine/db"},
            {"database_url": "postgresql://mine/db", "sqs_endpoint": RUNTIME["sqs_endpoint"]},
        ),
        (
            {"sqs_endpoint": "http://mine:1"},
            {"database_url": RUNTIME["database_url"], "sqs_endpoint": "http://mine:1"},
        ),
        (
            {"database_url": "postgresql://mine/db", "sqs_endpoint": "http://mine:1"},
            {"database_url": "postgresql://mine/db", "sqs_endpoint": "http://mine:1"},
        ),
    ],
)
def test_with_runtime_fills_unset_urls_but_keeps_explicit_ones(
    tmp_path: Path, explicit: dict[str, str], expected: dict[str, str]
) -> None:
    write_runtime(str(tmp_path), RUNTIME)
    base = Settings(data_dir=str(tmp_path), **explicit)
    result = base.with_runtime()
    assert result.database_url == expected["database_url"]
    assert result.sqs_endpoint == expected["sqs_endpoint"]
    assert dataclasses.replace(result, database_url=None, sqs_endpoint=None) == dataclasses.replace(
        base, database_url=None, sqs_endpoint=None
    )


def test_with_runtime_without_a_runtime_file_changes_nothing(tmp_path: Path) -> None:
    base = Settings(data_dir=str(tmp_path / "missing"))
    assert base.with_runtime() == base


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", "null"])
def test_with_runtime_ignores_an_unreadable_runtime_file(tmp_path: Path, content: str) -> None:
    (tmp_path / settings_module.RUNTIME_FILE).write_text(content)
    base = Settings(data_dir=str(tmp_path))
    assert base.with_runtime() == base


def test_with_runtime_after_remove_runtime_changes_nothing(tmp_path: Path) -> None:
    write_runtime(str(tmp_path), RUNTIME)
    settings_module.remove_runtime(str(tmp_path))
    settings_module.remove_runtime(str(tmp_path))
    base = Settings(data_dir=str(tmp_path))
    assert base.with_runtime() == base


def test_write_runtime_then_read_runtime_round_trips(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "nested" / "data")
    write_runtime(data_dir, {"database_url": "x", "pid": 12})
    assert settings_module.read_runtime(data_dir) == {"database_url": "x", "pid": 12}


# --- env() -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(
            database_url="postgresql://u@h:1/db",
            sqs_endpoint="http://h:2",
            api_port=8081,
            workers=3,
            poll_seconds=1,
            controller_interval=0.05,
            retry_base_s=0.1,
            retry_max_s=12.5,
            queues="sum2,mult3",
            log_format="text",
        ),
    ],
    ids=["defaults", "customised"],
)
def test_env_round_trips_through_from_env(settings: Settings) -> None:
    env = settings.env()
    assert all(name.startswith("TASKER_") and isinstance(value, str) for name, value in env.items())
    assert Settings.from_env(env=env) == settings


def test_env_leaves_out_unset_values() -> None:
    env = Settings().env()
    assert "TASKER_DATABASE_URL" not in env
    assert "TASKER_SQS_ENDPOINT" not in env
    assert len(env) == len(OPTIONS) - 2


# --- derived values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "cpu_count", "expected"),
    [
        (0, None, 1),
        (0, 1, 1),
        (0, 2, 1),
        (0, 3, 1),
        (0, 8, 4),
        (-2, 8, 4),
        (1, 64, 1),
        (6, 2, 6),
    ],
)
def test_tasker_processes_is_at_least_one_and_keeps_an_explicit_value(
    monkeypatch: pytest.MonkeyPatch, workers: int, cpu_count: int | None, expected: int
) -> None:
    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: cpu_count)
    assert Settings(workers=workers).tasker_processes == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", []), ("sum2", ["sum2"]), (" sum2 , mult3 ,, ", ["sum2", "mult3"]), (",", [])],
)
def test_comma_separated_lists_are_split_and_stripped(raw: str, expected: list[str]) -> None:
    settings = Settings(queues=raw, task_modules=raw)
    assert settings.queue_list == expected
    assert settings.task_module_list == expected


@pytest.mark.parametrize(("url", "ok"), [("postgresql://u@h/db", True), (None, False), ("", False)])
def test_require_database(url: str | None, ok: bool) -> None:
    settings = Settings(database_url=url)
    if ok:
        assert settings.require_database() == url
    else:
        with pytest.raises(ConfigError, match="TASKER_DATABASE_URL"):
            settings.require_database()


# --- options and the documentation table -----------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_option_has_a_tasker_env_name_and_help(name: str) -> None:
    option = OPTIONS[name]
    assert option.env.startswith("TASKER_")
    assert option.env == f"TASKER_{name.upper()}"
    assert option.help.strip()
    assert "|" not in option.help


def test_option_env_names_are_unique() -> None:
    envs = [o.env for o in OPTIONS.values()]
    assert len(envs) == len(set(envs))


def test_options_document_exactly_the_settings_fields_with_the_same_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert set(fields) == set(OPTIONS)
    for name, option in OPTIONS.items():
        assert fields[name].default == option.default, name
        assert option.kind.__name__ in str(fields[name].type), name


def test_settings_table_lists_every_variable() -> None:
    table = settings_table()
    lines = table.splitlines()
    assert lines[:2] == ["| variable | default | meaning |", "| --- | --- | --- |"]
    assert len(lines) == len(OPTIONS) + 2
    for line, option in zip(lines[2:], OPTIONS.values(), strict=True):
        assert line.startswith(f"| `{option.env}` | ")
        assert line.endswith(f" | {option.help} |")
        if option.default is None:
            assert "| (unset) |" in line
        elif option.default == "":
            assert "| (empty) |" in line
        else:
            assert f"| `{option.default}` |" in line
