"""The local Airflow's home and environment, kept inside the checkout (.airflow/).

Nothing is written to the user's home or to a global site-packages: every Airflow command the
dev stack runs gets `stack_env()`, which points AIRFLOW_HOME at .airflow/ and puts this venv's
bin/ first on PATH (`airflow standalone` starts its parts as `airflow ...` subprocesses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".airflow"
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"


def stack_env(port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for `airflow standalone` and the lab: this checkout's dags/ and plugins/, no examples."""
    env = dict(os.environ if base is None else base)
    venv_bin = str(Path(sys.executable).parent)
    env.update({
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # New DAG files show up within half a minute instead of the default five.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Airflow 3.3.2: a task's supervisor notices its process ended only at its next heartbeat
        # check (5 s by default); a gate answered or a wait resumed before the scheduler heard of
        # that exit is failed as "state changed externally" and asked again after a retry delay.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
    })
    return env


def isolated_env(home: Path, port: int) -> dict[str, str]:
    """`stack_env()` with another home, for an Airflow a test starts: connections come only from its
    metadatabase (no AIRFLOW_CONN_* of the caller), and new DAG files are found within seconds."""
    env = {k: v for k, v in stack_env(port).items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "5"
    return env


def prepare() -> Path:
    """Create .airflow/ (git-ignored); standalone fills it with airflow.db, logs and the admin password."""
    HOME.mkdir(exist_ok=True)
    return HOME


def admin_password() -> str:
    """The admin password that SimpleAuthManager generated on the first start."""
    return json.loads((HOME / PASSWORD_FILE).read_text())["admin"]


def create_fleet_pool(env: dict[str, str]) -> None:
    """The pool that limits how many clusters a fleet rollout migrates at once; deferred tasks
    count, so a run waiting for its cluster holds its slot. Re-running resets its size."""
    from kkp_migration.rollout import POOL, POOL_SLOTS

    subprocess.run(["airflow", "pools", "set", POOL, str(POOL_SLOTS), "clusters a fleet rollout migrates at once",
                    "--include-deferred"], env=env, cwd=ROOT, check=True, capture_output=True)


def import_connections(path: Path, env: dict[str, str]) -> None:
    """Register the lab's connections; re-running overwrites them with the lab's current ones."""
    subprocess.run(["airflow", "connections", "import", "--overwrite", str(path)],
                   env=env, cwd=ROOT, check=True)
