"""Airflow on CeleryExecutor for the Celery tier: PostgreSQL, Redis, API server, scheduler,
dag-processor, triggerer and two Celery workers, each a process group of its own (scripts/celery_stack.py).

One stack per test module, in a temporary AIRFLOW_HOME, on free ports. Tests talk to it only through
the REST API, like tests/e2e; when a test fails, the states and logs of the run's unfinished tasks and
the tail of every component's output are printed. Every process is stopped at the end, and none may
survive it.
"""

from __future__ import annotations

import collections
import time

import pytest

from scripts.celery_stack import WORKERS, CeleryStack
from scripts.process_groups import ports_in_use
from tests.e2e.airflow_rest import AirflowREST
from tests.e2e.airflow_under_test import AirflowUnderTest, per_test, pytest_runtest_makereport  # noqa: F401

# A task whose worker died is failed (and retried) 20 s after its last heartbeat instead of Airflow's
# default 5 minutes; the scheduler looks every 2 s.
SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}


class CeleryAirflow(AirflowUnderTest):
    components = ("scheduler", "dag-processor", "triggerer", *WORKERS)
    output_file = "celery.out"

    def __init__(self, stack: CeleryStack, output: collections.deque):
        super().__init__(AirflowREST(f"http://localhost:{stack.api_port}"), stack.home, output)
        self.stack = stack

    def exited(self) -> dict[str, int]:
        return self.stack.exited()

    def component(self, line: str) -> str:
        """The process group that printed a line: "worker-1 | ..." -> "worker-1"."""
        return line.split("|", 1)[0].strip()


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory):
    """The stack up: healthy (scheduler, triggerer), logged in as admin, dags/ parsed, both workers answering."""
    output: collections.deque = collections.deque(maxlen=40000)
    stack = CeleryStack(tmp_path_factory.mktemp("airflow-celery-home"), echo=output.append, settings=SETTINGS)
    instance = CeleryAirflow(stack, output)
    began = time.monotonic()
    try:
        stack.start()
        started = time.monotonic()
        instance.wait_ready()
        instance.wait_until("both Celery workers to answer a ping",
                            lambda: stack.workers_answering() == set(WORKERS), 60)
        print(f"\nCelery stack: PostgreSQL, Redis and the database schema in {started - began:.0f} s, "
              f"every part ready {time.monotonic() - began:.0f} s after the start")
        yield instance
    finally:
        stopping = time.monotonic()
        stopped = stack.stop()
        print(f"\nCelery stack stopped in {time.monotonic() - stopping:.0f} s")
        instance.save_output()
        survivors = {s.name: s.survivors for s in stopped if s.survivors}
        assert not survivors, f"the Celery stack left processes behind: {survivors}"
        busy = ports_in_use(set().union(*(s.ports for s in stopped)))
        assert not busy, f"ports still listened on: {busy}"


@pytest.fixture
def airflow(request, celery_stack):
    """The module's Celery stack for one test; on failure prints what it was doing."""
    yield from per_test(request, celery_stack)
