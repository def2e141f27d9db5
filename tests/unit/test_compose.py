from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TASKER_SERVICES = ("api", "tasker", "controller", "migrate")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _subparsers(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _assert_real_subcommand(argv: list[str]) -> None:
    """``argv`` is ``tasker`` followed by a chain of subcommands the CLI's parser defines."""
    from cli.main import build_parser

    assert argv[:1] == ["tasker"], argv
    parser = build_parser()
    words = [w for w in argv[1:] if not w.startswith("-")]
    action = _subparsers(parser)
    assert action is not None, "the tasker parser defines no subcommands"
    for word in words:
        assert word in action.choices, f"{' '.join(argv)}: {word!r} not in {sorted(action.choices)}"
        action = _subparsers(action.choices[word])
        if action is None:
            break
    assert action is None, f"{' '.join(argv)} names no complete subcommand"


def _mount(volume: str | dict[str, Any]) -> str:
    """A volume in the short ``source:target[:mode]`` syntax."""
    if isinstance(volume, str):
        return volume
    mode = ":ro" if volume.get("read_only") else ""
    return f"{volume.get('source')}:{volume.get('target')}{mode}"


def _is_built_from_here(service: dict[str, Any]) -> bool:
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in (".", "./")


@pytest.mark.parametrize("name", TASKER_SERVICES)
def test_every_service_runs_a_real_tasker_subcommand(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert "command" in services[name], f"{name} has no explicit command"
    _assert_real_subcommand(_argv(services[name]["command"]))


def test_image_default_command_is_a_real_tasker_subcommand(dockerfile: str) -> None:
    match = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.MULTILINE)
    assert match, "Dockerfile has no exec-form CMD"
    _assert_real_subcommand(json.loads(match.group(1)))


def test_every_tasker_variable_in_compose_is_a_known_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    from core.settings import OPTIONS

    known = {opt.env for opt in OPTIONS.values()}
    for name, service in services.items():
        env = service.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        unknown = {k for k in keys if k.startswith("TASKER_")} - known
        assert not unknown, f"{name} sets unknown settings: {sorted(unknown)}"


def test_tasker_service_is_scalable(services: dict[str, dict[str, Any]]) -> None:
    tasker = services["tasker"]
    assert "container_name" not in tasker
    assert not tasker.get("ports"), "a fixed host port prevents --scale tasker=N"


def test_api_healthcheck_curls_healthz(services: dict[str, dict[str, Any]]) -> None:
    test = services["api"]["healthcheck"]["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert "curl" in command
    assert "/healthz" in command


def test_secret_dir_is_mounted_read_only_into_every_built_service(
    services: dict[str, dict[str, Any]],
) -> None:
    built = [name for name, service in services.items() if _is_built_from_here(service)]
    assert set(TASKER_SERVICES) <= set(built)
    for name in built:
        mounts = [_mount(v) for v in services[name].get("volumes") or []]
        assert "./secret:/app/secret:ro" in mounts, f"{name} does not mount ./secret read-only"


def test_dockerfile_installs_curl_and_the_package(dockerfile: str) -> None:
    assert re.search(r"apt-get install[^\n]*\bcurl\b", dockerfile)
    assert "pip install" in dockerfile
