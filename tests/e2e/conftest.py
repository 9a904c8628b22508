"""A real `airflow standalone` (scheduler, dag-processor, triggerer, API server) for e2e tests.

One instance per test module, in a temporary AIRFLOW_HOME on a free port, started and stopped as
one process group the way `make run` does it (scripts/). Tests talk to it only through the REST
API. When a test fails, the tail of the scheduler's and triggerer's output and the states and
logs of the run's unfinished or failed tasks are printed.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from scripts import airflow_home
from scripts.process_groups import ProcessGroup, free_port, ports_in_use
from tests.e2e.airflow_rest import AirflowREST
from tests.e2e.airflow_under_test import AirflowUnderTest, per_test, pytest_runtest_makereport  # noqa: F401

ROOT = airflow_home.ROOT


class Standalone(AirflowUnderTest):
    components = ("scheduler", "triggerer")
    output_file = "standalone.out"

    def __init__(self, api: AirflowREST, home: Path, output: collections.deque, group: ProcessGroup):
        super().__init__(api, home, output)
        self.group = group

    def exited(self) -> dict[str, int]:
        code = self.group.exited()
        return {} if code is None else {"airflow standalone": code}

    def component(self, line: str) -> str:
        """The part of standalone that printed a line: "airflow  | scheduler  | ..." -> "scheduler"."""
        parts = line.split("|", 2)
        return parts[1].strip() if len(parts) == 3 else ""


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """`airflow standalone` up, healthy (scheduler and triggerer), logged in as admin, dags/ parsed."""
    home = tmp_path_factory.mktemp("airflow-home")
    port = free_port()
    output: collections.deque = collections.deque(maxlen=20000)
    group = ProcessGroup("airflow", ["airflow", "standalone"], airflow_home.isolated_env(home, port), str(ROOT),
                         echo=output.append)
    instance = Standalone(AirflowREST(f"http://localhost:{port}"), home, output, group)
    try:
        instance.wait_ready()
        yield instance
    finally:
        stopped = group.stop()
        instance.save_output()
        assert not stopped.survivors, f"airflow standalone left processes behind: {stopped.survivors}"
        assert not ports_in_use(stopped.ports), f"ports still listened on: {ports_in_use(stopped.ports)}"


@pytest.fixture
def airflow(request, standalone):
    """The module's standalone for one test; on failure prints what it was doing."""
    yield from per_test(request, standalone)
