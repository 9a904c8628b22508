"""The fleet rollout's tasks: read the plan, then per wave an approval and one migration run per
cluster (mapped TriggerDagRunOperator, deferred while it waits), then a summary.

The DAG has a fixed number of wave slots (fleetplan.MAX_WAVES) and reads the plan at run time, so
an edited plan needs no DAG change; slots beyond the plan's waves are skipped. A wave starts only
when every run of the wave before succeeded (the default trigger rule) and its gate was approved.
How many clusters migrate at once is the pool POOL's size: created with --include-deferred, the
runs' waiting trigger tasks hold a slot for as long as their run lasts.
"""

from __future__ import annotations

import logging

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import TaskGroup, TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from .. import fleetplan, rollout
from .gates import START_WAVE, WAVE_CLUSTERS, WAVE_GATE, MigrationGate
from .outcomes import step

log = logging.getLogger(__name__)
POOL = rollout.POOL
LOAD_PLAN = "load_plan"
# A migration run started by the fleet or a schedule: counted in the pool, waited for in the
# triggerer, its outcome the task's; not re-triggered by a retry (its run id exists by then).
RUN_AND_WAIT = dict(pool=POOL, retries=0, wait_for_completion=True, deferrable=True, allowed_states=["success"],
                    failed_states=["failed"], fail_when_dag_is_paused=True)


@step
def _load_plan() -> dict:
    params = get_current_context()["params"]
    return rollout.plan_record(fleetplan.load_plan(params.get("plan_path") or None))


def _status_rows(ti, plan: dict) -> list[dict]:
    """Where each cluster of the plan stands in this rollout (one state query per migration DAG)."""
    entries = [e for wave in plan["waves"] for e in wave]
    states: dict[str, dict] = {}
    for dag_id in {e["dag_id"] for e in entries}:
        run_ids = [rollout.child_run_id(ti.run_id, e["cluster_id"]) for e in entries if e["dag_id"] == dag_id]
        states.update(ti.get_task_states(dag_id=dag_id, run_ids=run_ids))
    rows = []
    for e in entries:
        run_id = rollout.child_run_id(ti.run_id, e["cluster_id"])
        found = states.get(run_id)
        report = ti.xcom_pull(dag_id=e["dag_id"], run_id=run_id, task_ids="report", key="report") if found else None
        rows.append({**{k: e[k] for k in ("cluster_id", "name", "wave", "dag_id")}, "run_id": run_id,
                     "status": rollout.classify(found, report), "outcome": (report or {}).get("outcome"),
                     "rollback": (report or {}).get("rollback")})
    return rows


@step
def _wave_runs(wave: int) -> list[dict]:
    """The wave's trigger arguments (what `migrate` maps over); its approval text under key markdown."""
    ti = get_current_context()["ti"]
    plan = ti.xcom_pull(task_ids=LOAD_PLAN)
    if wave >= len(plan["waves"]):
        raise AirflowSkipException(f"The plan has {len(plan['waves'])} wave(s); slot {wave} is not used.")
    entries = plan["waves"][wave]
    ti.xcom_push(key="markdown", value=rollout.wave_markdown(wave, entries, _status_rows(ti, plan)))
    return [rollout.trigger_kwargs(e, ti.dag_id, ti.run_id, wave) for e in entries]


@step
def _summary() -> dict:
    ti = get_current_context()["ti"]
    plan = ti.xcom_pull(task_ids=LOAD_PLAN)
    if plan is None:
        raise AirflowFailException("The fleet plan could not be read; the load_plan task says why.")
    rows = _status_rows(ti, plan)
    markdown = rollout.summary_markdown(rows)
    log.info("\n%s", markdown)
    result = {"clusters": {r["cluster_id"]: r["status"] for r in rows}, "markdown": markdown}
    ti.xcom_push(key="report", value=result)
    unfinished = [r["cluster_id"] for r in rows if r["status"] != "done"]
    if unfinished:
        raise AirflowFailException(f"Fleet rollout incomplete: {', '.join(unfinished)} not done (see the summary "
                                   "in this task's log or its report XCom).")
    return result


def load_plan():
    @task(task_id=LOAD_PLAN, doc_md="Reads and validates the fleet plan (every problem, one sentence each).")
    def run():
        return _load_plan()
    return run()


def wave(number: int) -> TaskGroup:
    """One wave: its clusters, the approval to start them, one migration run per cluster."""
    name = "the canary wave" if number == 0 else f"wave {number}"
    with TaskGroup(f"wave_{number}", tooltip=f"Start {name} after approval") as group:
        @task(task_id=WAVE_CLUSTERS,
              doc_md="This wave's clusters and their run confs; skipped when the plan has fewer waves.")
        def clusters():
            return _wave_runs(number)

        listed = clusters()
        gate = MigrationGate(task_id=WAVE_GATE, proceed=START_WAVE, subject=f"Start {name} of the fleet rollout?",
                             body="{{ ti.xcom_pull(task_ids='wave_%d.%s', key='markdown') }}" % (number, WAVE_CLUSTERS),
                             spare=("summary",))
        migrate = TriggerDagRunOperator.partial(
            task_id="migrate", **RUN_AND_WAIT, poke_interval=5, map_index_template="{{ task.trigger_run_id }}",
            doc_md="One migration run per cluster, waited for (deferred); fails when the run fails.",
        ).expand_kwargs(listed)
        listed >> gate >> migrate
    return group


def migrate_in_window(entry: fleetplan.PlanEntry):
    """A scheduled run's one task: the cluster's migration run, started as its window opens and
    waited for. Its gates ask people (no fleet approval stands for them); it counts in the pool."""
    return TriggerDagRunOperator(
        task_id="migrate", trigger_dag_id=entry.dag_id, conf=entry.conf, **RUN_AND_WAIT,
        trigger_run_id=f"scheduled__{entry.cluster_id}__{{{{ run_id }}}}", poke_interval=30,
        doc_md=f"Runs `{entry.dag_id}` for cluster `{entry.cluster_id}` in its window ({entry.window.summary}).")


def summary():
    @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE,
          doc_md="Where every cluster of the plan stands (done, failed with its rollback conf, not started...).")
    def run():
        return _summary()
    return run()
