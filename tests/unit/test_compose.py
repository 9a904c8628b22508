"""docker-compose.yaml and its Dockerfile, checked without a Docker engine (none runs on our machines).

The compose file is never started here, so this is what stands between it and a broken `docker
compose up`: it parses; it has the official layout's services, each with the image, command,
volumes, dependencies and health check it needs; its Celery settings point at its own PostgreSQL
and Redis with drivers requirements.txt installs; and the Airflow and Python versions agree with
requirements.txt and constraints.txt. tests/celery runs the same topology as local processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kkp_migration.rollout import POOL, POOL_SLOTS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# The Airflow services and the `airflow` command each runs (airflow-init runs a script).
COMMANDS = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
            "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
            "airflow-worker": "celery worker"}
AIRFLOW = [*COMMANDS, "airflow-init"]
MOUNTED = ("dags", "plugins", "include")


def interpolated(value: str) -> str:
    """Compose's interpolation with nothing set: ${VAR:-default} -> default, ${VAR:?error} -> <VAR>."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", r"<\1>", value)


def pinned(requirements: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)}==(\S+)", requirements, re.M)
    assert found, f"{name} is not pinned"
    return found.group(1)


def airflow_version() -> str:
    return pinned((ROOT / "requirements.txt").read_text(), "apache-airflow")


def test_has_the_official_layouts_services():
    assert set(SERVICES) >= {"postgres", "redis", *AIRFLOW}


@pytest.mark.parametrize("name", AIRFLOW)
def test_airflow_services_run_this_projects_image(name):
    service = SERVICES[name]
    assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert interpolated(service["image"]) == f"kkp-cni-migration:airflow-{airflow_version()}"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in service["environment"], "dependencies belong in the image"


@pytest.mark.parametrize("name", COMMANDS)
def test_airflow_services_command_and_health(name):
    service = SERVICES[name]
    assert service["command"] == COMMANDS[name]
    assert service["healthcheck"]["test"] and service["healthcheck"]["interval"]
    depends = {dep: how["condition"] for dep, how in service["depends_on"].items()}
    assert depends["postgres"] == depends["redis"] == "service_healthy"
    assert depends["airflow-init"] == "service_completed_successfully"


def test_workers_wait_for_the_api_server_they_report_to():
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_backing_services_have_health_checks(name):
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", AIRFLOW)
def test_project_folders_are_mounted(name):
    mounts = dict(interpolated(v).split(":")[:2] for v in SERVICES[name]["volumes"])
    for folder in MOUNTED:
        assert mounts.get(f"./{folder}") == f"/opt/airflow/{folder}", f"{folder}/ not mounted in {name}"
        assert (ROOT / folder).is_dir()
    assert SERVICES[name]["environment"]["KKP_FLEET_PLAN"] == "/opt/airflow/include/config/clusters.yaml"
    assert (ROOT / "include/config/clusters.yaml").is_file()


@pytest.mark.parametrize("name", AIRFLOW)
def test_celery_on_its_own_postgres_and_redis(name):
    env = {k: interpolated(str(v)) for k, v in SERVICES[name]["environment"].items()}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # SQLAlchemy 2.1 takes a bare postgresql:// for psycopg 3, which requirements.txt does not install.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert re.fullmatch(r"redis://:?@redis:6379/\d+", env["AIRFLOW__CELERY__BROKER_URL"])
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "<AIRFLOW_JWT_SECRET>", "every service must share one secret"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "<AIRFLOW_FERNET_KEY>"
    assert not [k for k in env if k.startswith("AIRFLOW_CONN_")], "credentials do not belong in the compose file"


def test_api_server_is_published_where_the_workers_reach_it():
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]


def test_init_migrates_and_creates_the_fleet_pool():
    init = SERVICES["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    script = interpolated("\n".join(init["command"])).replace("\\\n", " ")
    assert re.search(rf'airflow pools set {POOL} "{POOL_SLOTS}" .*--include-deferred', script), script


def test_versions_agree_with_requirements():
    version = airflow_version()
    requirements = (ROOT / "requirements.txt").read_text()
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", DOCKERFILE, re.M).groups() == (version, "3.11")
    assert pinned(constraints, "apache-airflow") == version
    for package in ("apache-airflow-providers-celery", "psycopg2-binary"):   # what the compose URLs need
        assert pinned(requirements, package) == pinned(constraints, package)
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def test_dockerfile_installs_the_pinned_requirements_and_the_package():
    runs = re.findall(r"^RUN (.+)$", DOCKERFILE, re.M)
    assert any("-r requirements.txt -c constraints.txt" in run for run in runs)
    assert any("--no-deps" in run and run.rstrip().endswith(" .") for run in runs)
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for copy in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.M):
        for source in copy.split():
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
            assert source.rstrip("/") in allowed, f".dockerignore keeps {source} out of the build context"
