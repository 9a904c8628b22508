"""A real `airflow standalone` (scheduler, dag-processor, triggerer, API server) for e2e tests.

One instance per test module, in a temporary AIRFLOW_HOME on a free port, started and stopped as
one process group the way `make run` does it (scripts/). Tests talk to it only through the REST
API. When a test fails, the tail of the scheduler's and triggerer's output and the states and
logs of the run's unfinished or failed tasks are printed.
"""

from __future__ import annotations

import collections
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts import airflow_home
from scripts.process_groups import ProcessGroup, ports_in_use
from tests.e2e.airflow_rest import AirflowREST

ROOT = airflow_home.ROOT
DAG_FILES = {p.name for p in (ROOT / "dags").glob("*.py")}


@dataclass
class Standalone:
    api: AirflowREST
    home: Path
    group: ProcessGroup
    output: collections.deque
    runs: list[tuple[str, str]] = field(default_factory=list)   # (dag_id, run_id) of the current test

    def check_running(self) -> None:
        code = self.group.exited()
        assert code is None, f"airflow standalone exited with code {code}:\n" + self.tail(80)

    def wait_until(self, what: str, condition, timeout: float, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            result = condition()
            if result:
                return result
            assert time.monotonic() < deadline, f"gave up after {timeout:.0f} s waiting for {what}"
            time.sleep(interval)

    def tail(self, lines: int, component: str | None = None) -> str:
        """The last `lines` lines standalone printed, or those one of its parts printed."""
        picked = [line for line in self.output if component is None or _component(line) == component]
        return "\n".join(picked[-lines:])


def _component(line: str) -> str:
    """The part of standalone that printed a line: "airflow  | scheduler  | ..." -> "scheduler"."""
    parts = line.split("|", 2)
    return parts[1].strip() if len(parts) == 3 else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(home: Path, port: int) -> dict[str, str]:
    """`make run`'s environment, but this test's home; connections come only from the metadatabase."""
    env = {k: v for k, v in airflow_home.stack_env(port).items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "5"
    return env


def _dags_parsed(api: AirflowREST) -> bool:
    errors = api.import_errors()
    assert not errors, "import errors in dags/:\n" + "\n".join(f"{f}:\n{t}" for f, t in errors.items())
    return DAG_FILES <= {Path(f).name for f in api.dags().values()}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """`airflow standalone` up, healthy (scheduler and triggerer), logged in as admin, dags/ parsed."""
    home = tmp_path_factory.mktemp("airflow-home")
    port = _free_port()
    output: collections.deque = collections.deque(maxlen=20000)
    group = ProcessGroup("airflow", ["airflow", "standalone"], _environment(home, port), str(ROOT),
                         echo=output.append)
    instance = Standalone(AirflowREST(f"http://localhost:{port}"), home, group, output)
    try:
        instance.wait_until("/api/v2/monitor/health to report scheduler and triggerer healthy",
                            lambda: instance.api.healthy() and
                            instance.api.health().get("triggerer", {}).get("status") == "healthy", 120)
        password_file = home / airflow_home.PASSWORD_FILE
        instance.api.login("admin", json.loads(password_file.read_text())["admin"])
        instance.wait_until("the dag-processor to parse every file in dags/", lambda: _dags_parsed(instance.api), 90)
        yield instance
    finally:
        stopped = group.stop()
        (home / "standalone.out").write_text("\n".join(output))
        assert not stopped.survivors, f"airflow standalone left processes behind: {stopped.survivors}"
        assert not ports_in_use(stopped.ports), f"ports still listened on: {ports_in_use(stopped.ports)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


@pytest.fixture
def airflow(request, standalone):
    """The module's standalone for one test; on failure prints what it was doing."""
    standalone.runs.clear()
    yield standalone
    if getattr(request.node, "e2e_failed", False):
        print(_diagnostics(standalone))


def _diagnostics(instance: Standalone) -> str:
    parts = []
    for dag_id, run_id in instance.runs:
        try:
            states = instance.api.task_states(dag_id, run_id)
        except AssertionError as error:
            parts.append(f"task states of {run_id}: {error}")
            continue
        parts.append(f"--- {dag_id} {run_id}: {instance.api.run_state(dag_id, run_id)}")
        parts += [f"  {task_id:55} {state}" for task_id, state in sorted(states.items())]
        for task_id, state in states.items():
            if state in ("success", "skipped", "upstream_failed", None):
                continue
            try_number = instance.api.task_instance(dag_id, run_id, task_id)["try_number"]
            try:
                events = instance.api.task_log(dag_id, run_id, task_id, try_number)
            except AssertionError as error:
                events = [str(error)]
            parts.append(f"--- log of {task_id} (try {try_number}, {state}):")
            parts += [_log_line(e) for e in events[-40:]]
    for component in ("scheduler", "triggerer"):
        parts.append(f"--- {component} output (tail):")
        parts.append(instance.tail(60, component))
    parts.append(f"(full standalone output: {instance.home / 'standalone.out'} after the module ends)")
    return "\n".join(parts)


def _log_line(event) -> str:
    if not isinstance(event, dict):
        return str(event)
    return f"  {event.get('timestamp', '')} {event.get('level', '')} {event.get('event', '')}"
