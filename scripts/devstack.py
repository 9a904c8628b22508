"""`make run`: the KKP lab and `airflow standalone` under one supervisor.

Starts the lab, then Airflow (home in .airflow/), registers the lab's connections, waits until
the DAGs are parsed and tells the person where to click. Ctrl-C or SIGTERM stops both process
groups, kills leftovers and reports the ports given back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts import airflow_home
from scripts.airflow_api import AirflowAPI
from scripts.process_groups import ProcessGroup, Stopped, ports_in_use, say

ROOT = airflow_home.ROOT
LAB_DIR = ROOT / ".lab"
LAB_ARGV = [sys.executable, "-m", "lab", "up", "--dir", ".lab/", "--time-factor", "0.2"]
MIGRATION_DAG = "kkp_cni_canal_to_cilium"


class Abort(Exception):
    """Set-up cannot go on: a stop was asked for, a program exited, or something never became ready."""


class DevStack:
    def __init__(self, port: int):
        self.port = port
        self.env = airflow_home.stack_env(port)
        self.groups: list[ProcessGroup] = []
        self.stop_requested = threading.Event()
        self.api = AirflowAPI(f"http://localhost:{port}")

    def start(self, name: str, argv: list[str], expect: str | None = None) -> ProcessGroup:
        group = ProcessGroup(name, argv, self.env, str(ROOT), expect=expect)
        self.groups.append(group)
        return group

    def check_running(self) -> None:
        if self.stop_requested.is_set():
            raise Abort("stop requested")
        for group in self.groups:
            code = group.exited()
            if code is not None:
                raise Abort(f"{group.name} exited with code {code}")

    def wait_until(self, what: str, condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_running()
            if time.monotonic() > deadline:
                raise Abort(f"gave up waiting {timeout:.0f} s for {what}")
            self.stop_requested.wait(0.5)

    def up(self) -> None:
        if ports_in_use({self.port}):
            raise Abort(f"port {self.port} is in use: stop what listens there, or run `AIRFLOW_PORT=8081 make run`")
        airflow_home.prepare()
        lab = self.start("lab", LAB_ARGV, expect="lab ready:")
        self.wait_until("the lab to print 'lab ready:'", lab.ready.is_set, 60)
        self.start("airflow", ["airflow", "standalone"])
        self.wait_until(f"Airflow to report healthy at {self.api.base_url}/api/v2/monitor/health",
                        self.api.healthy, 180)
        airflow_home.import_connections(LAB_DIR / "airflow-connections.json", self.env)
        airflow_home.create_fleet_pool(self.env)
        self.api.login("admin", airflow_home.admin_password())
        dag_files = {p.name for p in (ROOT / "dags").glob("*.py")}
        try:
            self.wait_until("the dag-processor to parse every file in dags/",
                            lambda: dag_files <= parsed_files(self.api.dags(), self.api.import_errors()), 90)
        except Abort:
            self.check_running()  # a timeout is reported in the banner; a stop or a crash is not
        self.banner(lab.ready_line, dag_files)

    def banner(self, lab_line: str, dag_files: set[str]) -> None:
        from kkp_migration.rollout import POOL, POOL_SLOTS

        dags, errors = self.api.dags(), self.api.import_errors()
        unparsed = sorted(dag_files - parsed_files(dags, errors))
        canal = canal_clusters(self.env)
        cluster = (f"{canal[0][1]} (the lab's {canal[0][0]})" if canal
                   else "a Canal cluster's id (see `.venv/bin/python -m lab status --dir .lab`)")
        lines = [
            "",
            "=" * 78,
            f"Airflow UI:     {self.api.base_url}",
            f"Login:          admin / {airflow_home.admin_password()}"
            f"  (from {airflow_home.HOME / airflow_home.PASSWORD_FILE})",
            f"DAGs:           {', '.join(sorted(dags)) or 'none (dags/ has no DAG yet)'}",
            f"Import errors:  {len(errors) or 'none'}",
        ]
        for file, trace in sorted(errors.items()):
            lines.append(f"  {Path(file).name}: {trace.strip().splitlines()[-1] if trace.strip() else '?'}")
        if unparsed:
            lines.append(f"Not parsed yet: {', '.join(unparsed)}")
        lines += [
            f"Lab:            {lab_line}",
            f"                connections imported from {LAB_DIR / 'airflow-connections.json'}",
            f"Fleet:          pool {POOL} ({POOL_SLOTS} clusters at once); plan include/config/clusters.yaml",
            "",
            "Migrate a lab cluster from Canal to Cilium:",
            f"  1. In the UI open DAG {MIGRATION_DAG} and click Trigger.",
            f"  2. Set cluster_id to {cluster}, keep \"Unpause on trigger\" ticked, click Trigger.",
            "  3. When a step waits for approval, open Browse -> Required Actions, read the plan and click",
            "     the option that goes on (Switch to Cilium <version>, Restart <n> pods, ...) or Stop here.",
            "",
            "Ctrl-C stops the lab and Airflow.",
            "=" * 78,
        ]
        say("\n".join(lines))

    def serve(self) -> None:
        """Block until Ctrl-C / SIGTERM, or until the lab or Airflow exits on its own."""
        while True:
            self.check_running()
            self.stop_requested.wait(1.0)

    def down(self) -> bool:
        """Stop every group at once; True when nothing is left running and every port is free."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.groups))) as pool:
            results: list[Stopped] = list(pool.map(lambda g: g.stop(), self.groups))
        clean = True
        for result in results:
            busy = ports_in_use(result.ports)
            ports = ", ".join(str(p) for p in sorted(result.ports - busy)) or "none held"
            note = f" (SIGKILL needed for pids {result.killed})" if result.killed else ""
            say(f"stopped {result.name}{note}; ports freed: {ports}")
            if result.survivors or busy:
                clean = False
                say(f"  still there: pids {result.survivors}, ports {sorted(busy)}")
        return clean


def parsed_files(dags: dict[str, str], errors: dict[str, str]) -> set[str]:
    """Names of the files in dags/ the dag-processor has been through: they gave a DAG or an error."""
    return {Path(f).name for f in [*dags.values(), *errors]}


def canal_clusters(env: dict[str, str]) -> list[tuple[str, str]]:
    """(name, id) of the lab's Canal clusters, as the running lab reports them (`python -m lab status`)."""
    done = subprocess.run([sys.executable, "-m", "lab", "status", "--dir", str(LAB_DIR), "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return []
    clusters = json.loads(done.stdout)["clusters"]
    return [(c["name"], c["id"]) for c in clusters if (c.get("cni") or {}).get("type") == "canal"]


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    stack = DevStack(int(os.environ.get("AIRFLOW_PORT", "8080")))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stack.stop_requested.set())
    code = 0
    try:
        stack.up()
        stack.serve()
    except Abort as reason:
        if not stack.stop_requested.is_set():
            say(f"devstack: {reason}")
            code = 1
    except Exception as error:  # anything unforeseen still stops the children below
        say(f"devstack: {type(error).__name__}: {error}")
        code = 1
    finally:
        say("devstack: stopping the lab and Airflow ...")
        if not stack.down():
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
