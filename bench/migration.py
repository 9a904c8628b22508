"""A full Canal -> Cilium migration of one lab cluster through the real DAG and dag.test(),
every gate approved (pods without a controller included), with what the benchmarks read off it:
wall time, per-task timings, the time gates stood waiting for the answering thread, the lab
thread's CPU time, and each trigger's event time.
"""

from __future__ import annotations

import time

DAG = "kkp_cni_canal_to_cilium"
EVENTS: list[dict] = []       # {"wait", "at"} for every event a ClusterWaitTrigger yielded


def _record_trigger_events() -> None:
    """Wrap ClusterWaitTrigger.run (in this process only) to note when each event is yielded."""
    from kkp_migration.airflow.triggers import ClusterWaitTrigger

    if getattr(ClusterWaitTrigger.run, "bench_wrapped", False):
        return
    original = ClusterWaitTrigger.run

    async def run(self):
        async for event in original(self):
            EVENTS.append({"wait": self.wait, "at": time.time()})
            yield event
    run.bench_wrapped = True
    ClusterWaitTrigger.run = run


def _include_bare_pods(task_id, subject, body, options):
    return options[0], ({"include_without_controller": True} if task_id.endswith("approve_pod_restart") else {})


def lab_cpu_seconds(lab) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(lab.server._thread.ident))


def migrate(lab, user, *, machines: bool) -> dict:
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from tests.airflow_support import run_dag

    _record_trigger_events()
    EVENTS.clear()
    conf = {"cluster_id": user.id, "access": "seed", "restart_machine_deployments": machines}
    cpu0, started = lab_cpu_seconds(lab), time.monotonic()
    state, states, answers, run_id = run_dag(DAG, conf, _include_bare_pods)
    wall, lab_cpu = time.monotonic() - started, lab_cpu_seconds(lab) - cpu0
    if state != "success":
        raise RuntimeError(f"the migration of {user.id} ended {state}: {states}")
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == DAG,
                                                         TaskInstance.run_id == run_id)).all()
        tasks = {ti.task_id: {"start": ti.start_date.timestamp() if ti.start_date else None,
                              "end": ti.end_date.timestamp() if ti.end_date else None, "state": str(ti.state)}
                 for ti in tis}
    gates = sum(t["end"] - t["start"] for k, t in tasks.items() if ".approve_" in k and t["start"] and t["end"])
    return {"wall_s": wall, "lab_cpu_s": lab_cpu, "gate_s": gates, "tasks": tasks, "events": list(EVENTS),
            "answers": len(answers), "run_id": run_id}
