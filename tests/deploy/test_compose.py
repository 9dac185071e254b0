"""docker/: the compose file validates with a real Compose implementation, agrees with
docs/deploying.md, keeps no secret, and uses only settings that .env.example lists.

There is no Docker daemon here: `docker-compose config` (Debian's docker-compose, pinned by the
Makefile) validates the file against the Compose schema and interpolates it offline.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
OVERRIDE = DOCKER / "compose.connections-file.yaml"
EXAMPLE = REPO / ".env.example"
DOCS = REPO / "docs" / "deploying.md"
COMPOSE_VERSION = "1.29.2"
"""The Compose implementation the Makefile installs (Debian's docker-compose package)."""

sys.path.insert(0, str(DOCKER))
import generate_env  # noqa: E402

ENV_REFERENCE = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?::?[-?+][^}]*)?\}")
TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


def looks_like_a_secret(token: str) -> bool:
    """Long hex, or a long mix of upper case, lower case and digits (base64, generated keys);
    not identifiers such as AIRFLOW__CORE__LOAD_EXAMPLES or paths."""
    if re.fullmatch(r"[0-9a-f]{24,}", token):
        return True
    return all(re.search(p, token) for p in ("[A-Z]", "[a-z]", "[0-9]"))


def example_values() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if match := generate_env.LINE.match(line):
            values[match[1]] = match[2]
    return values


@pytest.fixture(scope="module")
def compose_tool() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (`make test` and `make compose-check` install it)")
    version = subprocess.run([tool, "version", "--short"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert version == COMPOSE_VERSION, f"the Makefile pins docker-compose {COMPOSE_VERSION}, found {version}"
    return tool


def compose(tool: str, env_file: Path, *args: str, files: tuple[Path, ...] = (COMPOSE,),
            check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [tool, "--env-file", str(env_file)]
    for file in files:
        argv += ["-f", str(file)]
    argv += ["--profile", "simulators", "--profile", "tls", *args]
    # Only the env file feeds interpolation: nothing from the caller's environment.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                            cwd=REPO)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "simulators.env"
    assert generate_env.main(["--simulators", "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def rendered(compose_tool: str, generated_env: Path) -> dict[str, Any]:
    """The compose file as Compose understands it: validated, merged and interpolated."""
    return yaml.safe_load(compose(compose_tool, generated_env, "config").stdout)


def docs_services() -> dict[str, dict[str, str]]:
    """The service table under "## Services" in docs/deploying.md."""
    text = DOCS.read_text()
    section = text.split("\n## Services\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    table = {}
    for line in lines[2:]:
        cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        table[cells["service"].strip("`")] = cells
    return table


# --- validation ---------------------------------------------------------------------------------

def test_the_compose_file_validates_with_every_profile(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) >= {"postgres", "redis", "init", "airflow-worker", "hub-web"}


def test_the_validator_refuses_a_broken_file(compose_tool: str, generated_env: Path,
                                             tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is refused by the schema."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n", "    healthchek:\n", 1))
    result = compose(compose_tool, generated_env, "config", "--quiet", files=(broken,), check=False)
    assert result.returncode != 0 and "healthchek" in result.stderr


def test_compose_refuses_to_start_while_a_secret_is_empty(compose_tool: str) -> None:
    result = compose(compose_tool, EXAMPLE, "config", "--quiet", check=False)
    assert result.returncode != 0
    assert re.search(r"set [A-Z_]+ in \.env", result.stderr), result.stderr


def test_the_connections_file_override_validates(compose_tool: str, generated_env: Path,
                                                 tmp_path: Path) -> None:
    env = tmp_path / "with-file.env"
    connections = tmp_path / "connections.json"
    connections.write_text("{}")
    env.write_text(generated_env.read_text().replace(
        "HUB_CONNECTIONS_FILE=\n", f"HUB_CONNECTIONS_FILE={connections}\n"))
    config = yaml.safe_load(compose(compose_tool, env, "config", files=(COMPOSE, OVERRIDE)).stdout)
    for name in ("init", "airflow-worker", "hub-web"):
        service = config["services"][name]
        assert service["environment"]["AIRFLOW__SECRETS__BACKEND"].endswith("LocalFilesystemBackend")
        assert [s["source"] for s in service["secrets"]] == ["hub_connections"]
        assert "HUB_DATABASE_URL" in service["environment"], "the override adds, never replaces"


# --- the docs and the file agree ------------------------------------------------------------------

def test_the_docs_name_every_service_with_its_profile(rendered: dict[str, Any]) -> None:
    documented = docs_services()
    assert set(documented) == set(rendered["services"])
    for name, row in documented.items():
        profiles = rendered["services"][name].get("profiles", [])
        assert profiles == ([row["profile"]] if row["profile"] else []), name


def test_long_running_services_have_health_checks_and_restart(rendered: dict[str, Any]) -> None:
    for name, row in docs_services().items():
        service = rendered["services"][name]
        if row["kind"] == "long-running":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert service.get("restart") == "unless-stopped", name
        else:
            assert row["kind"] == "one-shot", name
            assert service.get("restart") == "no", f"{name} is one-shot: it must not restart"


def test_the_stack_waits_for_init_and_its_databases(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    hub_image = services["init"]["image"]
    for name, service in services.items():
        if service.get("image") != hub_image or "profiles" in service or name == "init":
            continue
        depends = service["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert "build" in services["init"], "init builds the image the others use"
    assert services["airflow-worker"]["deploy"]["replicas"] == 2, "two Celery workers"


def test_airflow_and_the_ledger_have_separate_databases(rendered: dict[str, Any]) -> None:
    init = rendered["services"]["init"]["environment"]
    airflow_db = init["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    ledger_db = init["HUB_DATABASE_URL"]
    assert airflow_db.startswith("postgresql+psycopg2://airflow:") and airflow_db.endswith("/airflow")
    assert ledger_db.startswith("postgresql+psycopg2://hub:") and ledger_db.endswith("/hub")
    script = (DOCKER / "postgres" / "init-databases.sh").read_text()
    assert "AIRFLOW_DB_NAME:-airflow" in script and "HUB_DB_NAME:-hub" in script


def test_the_volumes_are_where_the_docs_say_state_lives(rendered: dict[str, Any]) -> None:
    section = DOCS.read_text().split("## Where each piece of state lives", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]+)`", section))
    assert set(rendered["volumes"]) <= named, set(rendered["volumes"]) - named
    mounts = {name: {str(v).split(":")[0] if isinstance(v, str) else v["source"]
                     for v in service.get("volumes", [])}
              for name, service in rendered["services"].items()}
    assert "airflow-logs" in mounts["airflow-worker"] and "airflow-logs" in mounts["airflow-scheduler"]
    assert "benefits-exchange" in mounts["benefits-sim"]
    assert "postgres-data" in mounts["postgres"]


def test_every_web_service_is_published_on_loopback_only(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        for port in service.get("ports", []):
            if name == "proxy":
                continue
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", name


def test_simulator_ports_agree_with_their_connections(rendered: dict[str, Any],
                                                      generated_env: Path) -> None:
    services = rendered["services"]
    connections = {}
    for line in generated_env.read_text().splitlines():
        match = generate_env.LINE.match(line)
        if match and match[1].startswith("AIRFLOW_CONN_") and match[2]:
            connections[match[1]] = json.loads(match[2].strip("'"))
    for name, conn_name in [("crm-sim", "AIRFLOW_CONN_CRM"),
                            ("revenues-sim", "AIRFLOW_CONN_REVENUES_NORTHGATE"),
                            ("waste-sim", "AIRFLOW_CONN_WASTE_BARTEC"),
                            ("housing-sim", "AIRFLOW_CONN_HOUSING_REPAIRS"),
                            ("benefits-sim", "AIRFLOW_CONN_BENEFITS_ACADEMY")]:
        command = services[name]["command"]
        port = command[command.index("--port") + 1]
        conn = connections[conn_name]
        target = conn["host"] if "://" in conn["host"] else f"{conn['host']}:{conn['port']}"
        assert f"{name}:{port}" in target, (name, target)
        assert port in " ".join(services[name]["healthcheck"]["test"]), name
    benefits = services["benefits-sim"]["command"]
    known_hosts = benefits[benefits.index("--known-hosts-out") + 1]
    assert connections["AIRFLOW_CONN_BENEFITS_ACADEMY"]["extra"]["known_hosts_path"] == known_hosts
    crm = services["crm-sim"]["command"]
    assert crm[crm.index("--webhook-url") + 1] == "http://hub-web:8700/webhooks/crm"


# --- secrets and settings -----------------------------------------------------------------------

def deployment_files() -> list[Path]:
    return [COMPOSE, OVERRIDE, DOCKER / "Dockerfile", DOCKER / "Caddyfile", DOCKER / "init.sh",
            DOCKER / "postgres" / "init-databases.sh", EXAMPLE]


def test_no_literal_secret_in_any_deployment_file() -> None:
    for path in deployment_files():
        text = path.read_text()
        found = [t for t in TOKEN.findall(text) if looks_like_a_secret(t)]
        assert not found, f"{path.name} holds what looks like a secret: {found[:3]}"
        for user, password in re.findall(r"://([A-Za-z0-9_.-]*):([^@/\s]+)@", text):
            assert password.startswith("${"), f"{path.name}: a literal password in a URL"
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if generate_env.is_secret(key) or key == "PGPASSWORD":
                if isinstance(value, str) and re.fullmatch(r"redis://:\$\{[A-Z_]+\}@[^\s]+", value):
                    continue   # a URL whose password comes from the environment
                assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value), \
                    f"{name}.{key} must come from the environment"
                assert not re.search(r":-[^}]+\}", value), f"{name}.{key} has a literal default"


def test_the_secret_detector_finds_generated_secrets(generated_env: Path) -> None:
    """The scan above can fail: every secret the generator makes is caught by it."""
    values = [m[2] for m in map(generate_env.LINE.match, generated_env.read_text().splitlines())
              if m and generate_env.is_secret(m[1]) and not m[1].startswith("AIRFLOW_CONN_")]
    assert values and all(any(map(looks_like_a_secret, TOKEN.findall(v))) for v in values)


def test_env_example_leaves_every_secret_empty() -> None:
    values = example_values()
    secrets = {k for k in values if generate_env.is_secret(k)}
    assert {"POSTGRES_PASSWORD", "HUB_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_CONN_CRM",
            "CRM_WEBHOOK_SECRET", "HUB_API_TOKEN"} <= secrets
    assert all(values[k] == "" for k in secrets), [k for k in secrets if values[k]]


def test_every_setting_the_compose_files_use_is_in_env_example_and_used() -> None:
    used = set()
    for path in (COMPOSE, OVERRIDE):
        used |= set(ENV_REFERENCE.findall(path.read_text()))
    listed = set(example_values())
    assert used - listed == set(), f"not in .env.example: {sorted(used - listed)}"
    assert listed - used == set(), f"in .env.example but used nowhere: {sorted(listed - used)}"


def test_the_generator_fills_every_secret_with_a_usable_value(generated_env: Path) -> None:
    from cryptography.fernet import Fernet

    values = {}
    for line in generated_env.read_text().splitlines():
        if match := generate_env.LINE.match(line):
            values[match[1]] = match[2]
    for name in example_values():
        if generate_env.is_secret(name):
            assert values[name], f"{name} left empty"
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())   # a valid key, or this raises
    assert re.fullmatch(r"[0-9a-f]{48}", values["HUB_DB_PASSWORD"]), "URL-safe passwords"
    assert values["HUB_DB_PASSWORD"] != values["AIRFLOW_DB_PASSWORD"]
    assert oct(generated_env.stat().st_mode & 0o777) == "0o600"
    assert generate_env.main(["--output", str(generated_env)]) == 1, "never overwrites"


def test_the_generated_connections_are_what_the_hub_can_read(
        generated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.connections import connection_report

    for line in generated_env.read_text().splitlines():
        match = generate_env.LINE.match(line)
        if match and match[1].startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(match[1], match[2].strip("'"))
    assert {s.conn_id: s.state for s in connection_report()} == {
        "crm": "ok", "revenues_northgate": "ok", "benefits_academy": "ok",
        "licensing_uniform": "ok", "waste_bartec": "ok", "housing_repairs": "ok"}


def test_without_simulators_the_generator_leaves_connections_to_the_council() -> None:
    text = generate_env.render(EXAMPLE.read_text(), simulators=False)
    values = dict(m.groups() for m in map(generate_env.LINE.match, text.splitlines()) if m)
    assert values["AIRFLOW_CONN_CRM"] == "" and values["CRM_SIM_TOKEN"] == ""
    assert values["AIRFLOW_DAGS_PAUSED_AT_CREATION"] == "true"
    assert values["HUB_ADMIN_PASSWORD"]


# --- the image ----------------------------------------------------------------------------------

def test_the_image_is_the_official_airflow_at_the_locked_version_with_python_311() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    [base] = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert base == "apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}"
    assert args["PYTHON_VERSION"] == "3.11"
    locked = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.lock").read_text(), re.M)
    assert locked and args["AIRFLOW_VERSION"] == locked[1]
    assert args["AIRFLOW_VERSION"].startswith("3.3.")
    assert "-r /opt/hub/requirements.lock" in dockerfile


def test_the_image_holds_every_package_and_the_dag_files() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    copied = {src for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
              for src in line.split()[:-1] if not src.startswith("--")}
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r'include = \[([^\]]*)\]', pyproject)[1]
    for package in re.findall(r'"(\w+)\*"', packages):
        assert package in copied, f"{package} is not copied into the image"
    assert "dags" in copied and "requirements.lock" in copied
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    for source in copied:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is not in the build context"


def test_every_volume_mount_point_of_the_hub_image_exists_in_it(rendered: dict[str, Any]) -> None:
    """A new named volume takes the owner of its mount point from the image: a mount point the
    image lacks would be root's, and the hub's processes (uid 50000) could not write to it."""
    dockerfile = (DOCKER / "Dockerfile").read_text()
    made = set(re.findall(r"(/[a-z/-]+)", dockerfile.split("mkdir -p", 1)[1].split("&&", 1)[0]))
    hub_image = rendered["services"]["init"]["image"]
    for name, service in rendered["services"].items():
        if service.get("image") != hub_image:
            continue
        for volume in service.get("volumes", []):
            target = volume["target"] if isinstance(volume, dict) else str(volume).split(":")[1]
            assert target in made or target == "/opt/airflow/logs", (name, target)


def test_the_web_app_and_the_triggerer_meet_on_one_redis(rendered: dict[str, Any]) -> None:
    """The webhook publishes signals where the triggerer's AssetWatchers listen."""
    from airflow.sdk.definitions.connection import Connection

    services = rendered["services"]
    published = urlsplit(services["hub-web"]["environment"]["HUB_SIGNAL_REDIS_URL"])
    triggerer = services["airflow-triggerer"]["environment"]
    conn = Connection.from_uri(triggerer["AIRFLOW_CONN_" + triggerer["HUB_SIGNAL_CONN_ID"].upper()],
                               conn_id=triggerer["HUB_SIGNAL_CONN_ID"])
    assert (conn.conn_type, conn.host, conn.port, conn.password) == \
        ("redis", published.hostname, published.port, published.password)
    broker = urlsplit(triggerer["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.hostname, broker.password) == ("redis", published.password)
