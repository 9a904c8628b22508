"""`python -m bench`: every benchmark, each in a fresh process, then one markdown table.

Results go to bench/results/ (git-ignored): one JSON per benchmark with its raw numbers,
`latest.md` (the table) and `latest.json`. `python -m bench NAME...` runs only those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import airflow_home, report

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("lab_scale", "pod_restart", "wait_detection", "concurrent_waits", "api_cost", "parse_time", "end_to_end")


def run_one(name: str) -> dict:
    """Run one benchmark in a fresh process; its log goes to results/NAME.log."""
    started = time.monotonic()
    with open(RESULTS / f"{name}.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "bench.one", name, str(RESULTS)], stdout=log,
                              stderr=subprocess.STDOUT, env=os.environ.copy(), timeout=900)
    seconds = time.monotonic() - started
    out_file = RESULTS / f"{name}.json"
    if proc.returncode or not out_file.exists():
        tail = (RESULTS / f"{name}.log").read_text()[-1500:]
        return {"rows": [report.row(name, "benchmark failed", f"exit {proc.returncode}", "", f"FAILED: see "
                                    f"bench/results/{name}.log")], "seconds": seconds, "error": tail}
    result = json.loads(out_file.read_text())
    result["seconds"] = seconds
    return result


def main(names: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for stale in RESULTS.glob("*.json"):
        stale.unlink()
    started = time.monotonic()
    host = report.machine()
    airflow_home.prepare(RESULTS / "airflow-home")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(airflow_home.ROOT), str(airflow_home.ROOT / "include"), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    rows, results = [], {}
    for name in names or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_one(name)
        rows += results[name]["rows"]
        print(f"  {name}: {results[name]['seconds']:.0f} s", file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    table = report.markdown(rows, host, seconds)
    (RESULTS / "latest.md").write_text(table)
    (RESULTS / "latest.json").write_text(json.dumps({"machine": host, "seconds": seconds, "results": results},
                                                    indent=1))
    print(table)
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
