"""An Airflow home of the benchmarks' own (SQLite, inside bench/results/), set up once per run.

`prepare` sets the environment every Airflow benchmark process inherits and migrates the
metadata database; `lab_connections` points the DAGs' connections at a lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy())


def lab_connections(lab, kkp, directory: str) -> None:
    """kkp_seed and kkp_api, as Airflow reads connections from the environment."""
    ca_file = Path(directory) / "kkp-ca.crt"
    ca_file.write_bytes(lab.tls.ca_pem)
    for conn_id, conn in kkp.airflow_connections(str(ca_file)).items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
