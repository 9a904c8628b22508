"""Running the DAGs in-process for tests: `dag.test()` with a person answering the gates.

dag.test() parks approval gates in `awaiting_input` until something outside answers them; the
`Approver` thread answers them through the same model update and resume the REST API's HITL
endpoint performs, choosing per gate what a person would.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

# decide(task_id, subject, body, options) -> (chosen option, params_input) or None to leave it waiting
Decide = Callable[[str, str, str, list[str]], "tuple[str, dict] | None"]


def approve_all(task_id, subject, body, options):
    return options[0], {}


class Approver(threading.Thread):
    def __init__(self, dag_id: str, decide: Decide = approve_all, user: str = "test-approver"):
        super().__init__(daemon=True, name=f"approver-{dag_id}")
        self.dag_id = dag_id
        self.decide = decide
        self.user = user
        self.answered: list[dict] = []
        self.first_seen: dict = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._answer_pending()
            except Exception as exc:  # the DB may be busy (SQLite); try again
                print(f"approver: {type(exc).__name__}: {exc}")
            self.stop.wait(0.3)

    def _answer_pending(self) -> None:
        from sqlalchemy import select

        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail, HITLUser
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        with create_session() as session:
            tis = session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == self.dag_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
            now = time.monotonic()
            for ti in tis:
                detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
                if detail is None:
                    continue
                # Answer like a person, a moment after the question appears: an answer in the same
                # instant the task parks can be overwritten by the park (Airflow 3.3.2), and an
                # answer recorded on a task still parked a while later is submitted again.
                seen = self.first_seen.setdefault(ti.id, now)
                if now - seen < 1.0:
                    continue
                if detail.response_received:
                    if now - seen > 3.0:
                        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti,
                                            session=session)
                    continue
                choice = self.decide(ti.task_id, detail.subject, detail.body or "", list(detail.options))
                if choice is None:
                    continue
                option, params_input = choice
                detail.responded_by = HITLUser(id=self.user, name=self.user)
                detail.responded_at = timezone.utcnow()
                detail.chosen_options = [option]
                detail.params_input = params_input
                session.add(detail)
                handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti,
                                    session=session)
                self.answered.append({"task_id": ti.task_id, "option": option, "params": params_input,
                                      "subject": detail.subject, "body": detail.body})

    def __enter__(self):
        # Import what the thread needs here, in the main thread: two threads importing Airflow's
        # models at once can deadlock on the import and SQLAlchemy mapper locks.
        import airflow.models.dagcode  # noqa: F401
        import airflow.models.hitl  # noqa: F401
        import airflow.models.serialized_dag  # noqa: F401
        import airflow.models.taskinstance  # noqa: F401
        import airflow.models.trigger  # noqa: F401
        from sqlalchemy.orm import configure_mappers
        configure_mappers()
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(timeout=10)


def run_conf(user, access: str = "seed", **extra) -> dict:
    """A migration DAG's conf for a lab cluster: its id, the access path (with the project for the
    KKP API), no machine roll unless asked for, and `extra`."""
    conf = {"cluster_id": user.id, "access": access, "restart_machine_deployments": False, **extra}
    if access == "api":
        conf["project_id"] = user.project_id
    return conf


def dag_bag():
    """dags/ parsed as the dag-processor parses it."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=_dags_folder(), safe_mode=False)


def run_dag(dag_id: str, conf: dict, decide: Decide = approve_all, timeout: float = 600):
    """Run one DAG with dag.test() and return (dag run state, {task_id: state}, approver answers)."""
    from airflow.utils.session import create_session

    bag = dag_bag()
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    started = time.time()
    with Approver(dag_id, decide) as approver:
        dr = dag.test(run_conf=conf)
    assert time.time() - started < timeout, f"{dag_id} took longer than {timeout}s"
    with create_session() as session:
        from airflow.models.dagrun import DagRun
        run = session.get(DagRun, dr.id) if hasattr(dr, "id") else dr
        states = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
        return run.state, states, approver.answered, run.run_id


def xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id,
                                                     XComModel.task_id == task_id, XComModel.key == key))
        return None if row is None else XComModel.deserialize_value(row)


def _dags_folder() -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parents[1] / "dags")


def all_xcom_text(dag_id: str, run_id: str) -> str:
    """Every XCom value of a run, as text: for checking that no credential landed there."""
    from sqlalchemy import select

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)).all()
        return "\n".join(str(XComModel.deserialize_value(r)) for r in rows)
