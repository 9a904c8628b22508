"""How a task ends when the library or a check says no: the sentence goes to the task log and to
XCom `error` (where the run's report and a person find it), then Airflow gets its outcome.

A leaf module: DAG files reach it at parse time (through `step`), so it imports nothing that
talks to a cluster.
"""

from __future__ import annotations

import functools
import logging
from typing import NoReturn

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ..errors import BadInput, MigrationError, NeedsAttention, NothingToDo, Refused

log = logging.getLogger(__name__)


def record(ti, message: str) -> None:
    """Keep a failed task's sentence in its log and in XCom `error`."""
    log.error("%s", message)
    ti.xcom_push(key="error", value=message)


def fail(ti, message: str, error: type[Exception] = AirflowFailException) -> NoReturn:
    """Record the sentence, then end the task with `error` (AirflowFailException: no retry)."""
    record(ti, message)
    raise error(message) from None


def step(fn):
    """Map the library's errors to Airflow's task outcomes: NothingToDo skips, what a person must fix
    fails at once, other migration errors are left to Airflow's retries."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NothingToDo as exc:
            raise AirflowSkipException(str(exc)) from None
        except (BadInput, Refused, NeedsAttention) as exc:
            fail(get_current_context()["ti"], str(exc))
        except MigrationError as exc:
            record(get_current_context()["ti"], str(exc))
            raise
    return run


def run_name() -> str:
    """How the per-cluster lock names this run."""
    ti = get_current_context()["ti"]
    return f"{ti.dag_id}/{ti.run_id}"
