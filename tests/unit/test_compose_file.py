"""docker-compose.temporal.yml, the Dockerfile and .dockerignore, checked offline.

No Docker engine runs where the tests run, so ``docker compose config`` is not
available: the file is validated against the Compose Specification's JSON
schema (the copy vendored by the ``check-jsonschema`` package) and then checked
for what the schema cannot know: scaling, health, ordering, secrets, names.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

from advisories.search_attributes import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.temporal.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

#: Services that run until stopped; the others are one-shot jobs.
LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "jaeger", "worker", "api"}
JOBS = {"migrate", "search-attributes", "schedules"}
#: A value that is only a variable reference: ``${NAME}``, ``${NAME:?msg}``, ``${NAME:-x}``.
VARIABLE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(?::?[?-][^}]*)?\}$")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_the_production_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == LONG_RUNNING | JOBS
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: no image or build"
        assert "container_name" not in service, f"{name}: a fixed name blocks scaling"
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert environment(services["temporal"])["DB"] == "postgres12"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["jaeger"]["image"].startswith("jaegertracing/")
    assert services["search-attributes"]["image"].startswith("temporalio/admin-tools:")


def test_third_party_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[-1].rstrip("}")
        assert ":" in image and tag and tag != "latest", f"{name}: unpinned image {image}"


def test_project_services_share_the_worker_image(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(built) == {"migrate", "schedules", "worker", "api"}
    assert len({s["image"] for s in built.values()}) == 1
    assert all(s["build"]["dockerfile"] == "Dockerfile" for s in built.values())
    assert services["migrate"]["command"] == ["python", "-m", "schema"]
    assert services["schedules"]["command"] == ["python", "-m", "starter", "schedules", "sync"]
    # The worker runs the image's CMD, python -m worker.
    assert "command" not in services["worker"]
    assert services["api"]["command"][:3] == ["python", "-m", "api"]


def test_health_checks_and_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") in {"always", "unless-stopped"}, name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: no health check"
    for name in JOBS:
        assert services[name].get("restart") in {"no", "on-failure"}, name


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "temporal": {"postgresql": "service_healthy"},
        "temporal-ui": {"temporal": "service_healthy"},
        "search-attributes": {"temporal": "service_healthy"},
        "migrate": {"postgresql": "service_healthy"},
        "schedules": {
            "temporal": "service_healthy",
            "search-attributes": "service_completed_successfully",
        },
        "worker": {
            "postgresql": "service_healthy",
            "temporal": "service_healthy",
            "migrate": "service_completed_successfully",
            "search-attributes": "service_completed_successfully",
            "jaeger": "service_started",  # tracing is optional; never block on it
        },
        # The service reads PostgreSQL only; it needs neither Temporal nor the worker.
        "api": {"postgresql": "service_healthy", "migrate": "service_completed_successfully"},
    }
    for name, service in services.items():
        depends = {
            dep: spec["condition"] for dep, spec in (service.get("depends_on") or {}).items()
        }
        assert depends == expected.get(name, {}), name
        for dep, condition in depends.items():
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "ports" not in worker, "published ports would clash at --scale worker=N"
    assert "9464" in [str(p) for p in worker.get("expose", [])]
    env = environment(worker)
    assert env["METRICS_BIND_ADDRESS"] == "0.0.0.0:9464"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "9464/metrics" in " ".join(worker["healthcheck"]["test"])
    assert worker.get("read_only") is True


def test_published_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port}"


def literal_secrets(services: dict[str, dict[str, Any]]) -> list[str]:
    """Environment values that put a credential in the file instead of referencing one."""
    found = []
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not VARIABLE.match(value):
                found.append(f"{name}.{key}")
            # A password in a URL (user:password@host) must be a whole ${...} reference.
            masked = re.sub(r"\$\{[^}]*\}", "\0", value)
            for match in re.finditer(r"://([^/@\s]*)@", masked):
                _, _, password = match.group(1).partition(":")
                if password not in ("", "\0"):
                    found.append(f"{name}.{key}")
    return found


def test_no_credentials_in_the_file(services: dict[str, dict[str, Any]]) -> None:
    assert literal_secrets(services) == []
    text = COMPOSE.read_text(encoding="utf-8")
    # Required, with no default that could end up in production.
    assert text.count("${POSTGRES_PASSWORD:?") == len(re.findall(r"\$\{POSTGRES_PASSWORD", text))


def test_the_credential_check_catches_literals() -> None:
    bad: dict[str, dict[str, Any]] = {
        "a": {"environment": {"POSTGRES_PASSWORD": "hunter2"}},
        "b": {"environment": ["DATABASE_URL=postgresql://u:hunter2@db/x"]},
        "c": {"environment": {"DATABASE_URL": "postgresql://${U}:x${P}@db/x"}},
        "d": {"environment": {"DATABASE_URL": "postgresql://${U}:${P:?required}@db/x"}},
    }
    assert literal_secrets(bad) == ["a.POSTGRES_PASSWORD", "b.DATABASE_URL", "c.DATABASE_URL"]


def test_search_attributes_are_the_projects(services: dict[str, dict[str, Any]]) -> None:
    script = " ".join(services["search-attributes"]["command"])
    listed = re.search(r"for name in ([A-Za-z ]+); do", script)
    assert listed is not None
    assert set(listed.group(1).split()) == set(SEARCH_ATTRIBUTES)
    assert set(SEARCH_ATTRIBUTES.values()) == {"Keyword"}
    assert "--type Keyword" in script
    # Every $ of the script is escaped from compose's own interpolation.
    assert not re.search(r"(?<!\$)\$(?!\$)", script)


def test_dockerfile_runs_the_worker_as_an_unprivileged_user() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    # Python stages, and one Node stage that only fetches the map shapes (pinned image).
    images = [lines[i].split()[1] for i in froms]
    assert images[-1] == "python:3.11-slim"
    assert set(images) <= {"python:3.11-slim", "node:20-slim"}, images
    final = lines[froms[-1] :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert final[-1] == 'CMD ["python", "-m", "worker"]'
    for line in lines:
        if line.startswith(("ENV ", "ARG ")):
            assert not SECRET_NAME.search(line), f"no credentials in the image: {line}"
    copied = {
        line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line
    }
    allowed = {
        line.strip().lstrip("!").rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for source in copied:
        assert source in allowed, f"COPY {source} is outside the build context"
        assert (REPO / source).exists(), source


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allow-list: nothing enters the context unless named"
    allowed = [r for r in rules if r.startswith("!")]
    assert not [r for r in allowed if re.search(r"\.env|\.state|\.venv|tests", r)]
