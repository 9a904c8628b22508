"""An Airflow a test started (`airflow standalone`, or the Celery stack), as the end-to-end tiers use it.

Tests talk to it only through the REST API. It fails a test as soon as one of its processes dies, and
when a test fails its fixture prints the states and logs of the run's unfinished tasks and the tail
of its components' output (`diagnostics`), so a red CI run says what Airflow was doing.
"""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import pytest

from scripts import airflow_home
from tests.e2e.airflow_rest import AirflowREST

DAG_FILES = {p.name for p in (airflow_home.ROOT / "dags").glob("*.py")}


class AirflowUnderTest:
    """`components`: whose output a failed test shows. `output` holds what the programs printed,
    oldest first, saved to `home / output_file` at the end; `runs` the (dag_id, run_id) the current
    test started."""

    components: tuple[str, ...] = ()
    output_file = "airflow.out"

    def __init__(self, api: AirflowREST, home: Path, output: collections.deque):
        self.api = api
        self.home = home
        self.output = output
        self.runs: list[tuple[str, str]] = []

    def exited(self) -> dict[str, int]:
        """Programs that stopped on their own, with their exit codes."""
        raise NotImplementedError

    def component(self, line: str) -> str:
        """The Airflow component that printed an output line."""
        raise NotImplementedError

    def check_running(self) -> None:
        exited = self.exited()
        assert not exited, f"Airflow exited: {exited}\n" + self.tail(80)

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
        """The last `lines` lines of output, or of one component's."""
        picked = [line for line in self.output if component is None or self.component(line) == component]
        return "\n".join(picked[-lines:])

    def wait_ready(self) -> None:
        """Healthy (scheduler, triggerer), logged in as admin, and every file in dags/ parsed."""
        self.wait_until("/api/v2/monitor/health to report scheduler and triggerer healthy",
                        lambda: self.api.healthy() and
                        self.api.health().get("triggerer", {}).get("status") == "healthy", 120)
        password_file = self.home / airflow_home.PASSWORD_FILE
        self.api.login("admin", json.loads(password_file.read_text())["admin"])
        self.wait_until("the dag-processor to parse every file in dags/", self._dags_parsed, 90)

    def _dags_parsed(self) -> bool:
        errors = self.api.import_errors()
        assert not errors, "import errors in dags/:\n" + "\n".join(f"{f}:\n{t}" for f, t in errors.items())
        return DAG_FILES <= {Path(f).name for f in self.api.dags().values()}

    def diagnostics(self) -> str:
        """The current test's runs (task states, logs of tasks that did not succeed) and component tails."""
        parts = []
        for dag_id, run_id in self.runs:
            try:
                states = self.api.task_states(dag_id, run_id)
            except AssertionError as error:
                parts.append(f"task states of {run_id}: {error}")
                continue
            parts.append(f"--- {dag_id} {run_id}: {self.api.run_state(dag_id, run_id)}")
            parts += [f"  {task_id:55} {state}" for task_id, state in sorted(states.items())]
            for task_id, state in states.items():
                if state in ("success", "skipped", "upstream_failed", None):
                    continue
                try:   # a mapped task has no log of its own (the REST API wants a map_index)
                    try_number = self.api.task_instance(dag_id, run_id, task_id)["try_number"]
                    events = self.api.task_log(dag_id, run_id, task_id, try_number)
                except AssertionError as error:
                    try_number, events = "?", [str(error)]
                parts.append(f"--- log of {task_id} (try {try_number}, {state}):")
                parts += [_log_line(e) for e in events[-40:]]
        for component in self.components:
            parts.append(f"--- {component} output (tail):")
            parts.append(self.tail(60, component))
        parts.append(f"(full output: {self.home / self.output_file} after the module ends)")
        return "\n".join(parts)

    def save_output(self) -> None:
        (self.home / self.output_file).write_text("\n".join(self.output))


def per_test(request, instance: AirflowUnderTest):
    """A tier's function-scoped fixture body: the instance with no runs yet; diagnostics if the test failed."""
    instance.runs.clear()
    yield instance
    if getattr(request.node, "e2e_failed", False):
        print(instance.diagnostics())


def _log_line(event) -> str:
    if not isinstance(event, dict):
        return str(event)
    return f"  {event.get('timestamp', '')} {event.get('level', '')} {event.get('event', '')}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose body failed (`item.e2e_failed`), for the fixtures that print diagnostics.
    A tier's conftest imports this hook to register it."""
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report
