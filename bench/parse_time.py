"""5. DAG parse time: each file in dags/ as Airflow's DagBag measures it (its own file stats).

Each file is parsed in a fresh process ("cold": the file's imports of the migration library are
paid, as by a DAG processor that does not pre-import them) and then again in that process
("warm": imports cached, as with Airflow's pre-imported modules).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .report import at_most, row

DAGS = Path(__file__).resolve().parents[1] / "dags"
BENCH = "5 DAG parse"
TARGET = 0.2


def parse_twice(path: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    out = {}
    for label in ("cold", "warm"):
        bag = DagBag(dag_folder=path, safe_mode=False)
        if bag.import_errors:
            raise RuntimeError(f"{path} does not import: {bag.import_errors}")
        out[label] = sum(s.duration.total_seconds() for s in bag.dagbag_stats)
    return out


def run(results_dir: str) -> dict:
    rows, raw = [], {}
    for path in sorted(DAGS.glob("*.py")):
        proc = subprocess.run([sys.executable, "-m", "bench.parse_time", str(path)], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode:
            raise RuntimeError(f"parsing {path.name} failed: {proc.stderr[-2000:]}")
        times = json.loads(proc.stdout.strip().splitlines()[-1])
        raw[path.name] = times
        rows.append(row(BENCH, f"{path.name} (cold / warm)", f"{times['cold']:.3f} s / {times['warm']:.3f} s",
                        f"< {TARGET} s", at_most(max(times.values()), TARGET, " s")))
    return {"rows": rows, "raw": raw}


if __name__ == "__main__":
    print(json.dumps(parse_twice(sys.argv[1])))
