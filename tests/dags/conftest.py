"""An Airflow home of the test session's own (SQLite), set before anything imports Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="kkp-airflow-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = "120"


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database for dag.test()."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ})
    return _HOME


@pytest.fixture
def lab_connections(monkeypatch, kkp_lab):
    """The lab's kkp_seed and kkp_api connections, as Airflow reads them from the environment."""
    import json

    for conn_id, conn in kkp_lab.kkp.airflow_connections(kkp_lab.ca_file).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return kkp_lab
