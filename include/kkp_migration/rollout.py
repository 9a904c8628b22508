"""A fleet rollout's bookkeeping: which run migrates which cluster, and where each one stands.

The fleet DAG triggers one migration run per plan entry with a run id derived from its own, so
the runs of a rollout can always be found again (the summary, a wave's approval request, a
person in the UI). Plain Python: the Airflow side hands in the task states and reports it read.
"""

from __future__ import annotations

from typing import Any

from .fleetplan import FleetPlan, PlanEntry
from .report import conf_block, table

# The Airflow pool whose size is how many clusters a fleet migrates at once (with --include-deferred).
POOL = "kkp_migrations"
POOL_SLOTS = 4
# Where a cluster of the rollout stands, in the order a person reads them.
STATUSES = ("failed", "stopped", "waiting for approval", "waiting for its window", "running", "done", "not started")


def child_run_id(fleet_run_id: str, cluster_id: str) -> str:
    return f"fleet__{cluster_id}__{fleet_run_id}"


def entry_record(entry: PlanEntry) -> dict[str, Any]:
    """What the fleet DAG keeps of a plan entry in XCom (JSON)."""
    return {"cluster_id": entry.cluster_id, "name": entry.name, "wave": entry.wave, "dag_id": entry.dag_id,
            "conf": entry.conf, "window": entry.window.summary, "approve_each_step": entry.approve_each_step}


def plan_record(plan: FleetPlan) -> dict[str, Any]:
    return {"source": plan.source, "waves": [[entry_record(e) for e in wave] for wave in plan.waves()]}


def trigger_kwargs(entry: dict, fleet_dag_id: str, fleet_run_id: str, wave: int) -> dict[str, Any]:
    """TriggerDagRunOperator arguments for one cluster. Unless the plan asks to approve each step,
    the run's gates stand on this wave's approval (checked by the gates against the fleet run)."""
    conf = dict(entry["conf"])
    if not entry["approve_each_step"]:
        conf["fleet_approval"] = {"dag_id": fleet_dag_id, "run_id": fleet_run_id, "wave": wave}
    return {"trigger_dag_id": entry["dag_id"], "trigger_run_id": child_run_id(fleet_run_id, entry["cluster_id"]),
            "conf": conf}


def classify(states: dict[str, str] | None, report: dict | None) -> str:
    """A cluster's status from its run's task states ({task_id: state}, None when not triggered)
    and the report its last task pushed."""
    if not states:
        return "not started"
    if states.get("report") == "failed" or (report and report.get("failed")):
        return "failed"
    if report is not None or states.get("report") == "success":
        return "stopped" if (report or {}).get("outcome", "").startswith("STOPPED") else "done"
    if "awaiting_input" in states.values():
        return "waiting for approval"
    if states.get("maintenance_window") == "deferred":
        return "waiting for its window"
    return "running"


def summary_markdown(rows: list[dict]) -> str:
    """rows: {cluster_id, name, wave, dag_id, run_id, status, outcome, rollback} per plan entry."""
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [f"### Fleet: {len(rows)} cluster(s): {head}", "",
             table(["wave", "cluster", "status", "run", "outcome"],
                   [[r["wave"], f"{r['name'] or ''} `{r['cluster_id']}`".strip(), r["status"],
                     f"`{r['dag_id']}` `{r['run_id']}`" if r["status"] != "not started" else "",
                     r.get("outcome") or ""] for r in rows])]
    for r in rows:
        if r["status"] == "failed" and r.get("rollback"):
            lines += ["", f"**Rollback of `{r['cluster_id']}`**: " + conf_block(r["rollback"]["dag_id"],
                                                                                r["rollback"]["conf"])]
    return "\n".join(lines)


def wave_markdown(wave: int, entries: list[dict], rows: list[dict]) -> str:
    """The approval request of a wave: what it starts, and how the fleet stands so far."""
    kind = "the canary wave" if wave == 0 else f"wave {wave}"
    lines = [f"### Start {kind}: {len(entries)} cluster(s)", "",
             "Approving starts one migration run per cluster below. Their approval gates stand on this "
             "answer (recorded in each run's report as yours), except for clusters marked "
             "`approve each step`; every run still acts only inside its cluster's maintenance window.", "",
             table(["cluster", "migration", "window", "approvals"],
                   [[f"{e['name'] or ''} `{e['cluster_id']}`".strip(), f"`{e['dag_id']}`", e["window"],
                     "each step" if e["approve_each_step"] else "this wave"] for e in entries])]
    if wave > 0:
        lines += ["", summary_markdown(rows)]
    return "\n".join(lines)
