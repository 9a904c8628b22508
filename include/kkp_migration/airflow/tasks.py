"""Task bodies shared by the migration DAGs: read the run's params, call a plain step, push
what it learned to XCom. Errors a person must fix fail at once (no retry); transient ones are
left to Airflow's retries after the step's own bounded retries.
"""

from __future__ import annotations

import json
import logging

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from .. import lock, report, steps
from ..errors import MigrationError, NothingToDo
from .outcomes import run_name, step
from .params import check_conf, open_cluster, open_kkp
from .window import guard as window_guard

log = logging.getLogger(__name__)
MIGRATION_DAG = {"canal": "kkp_cni_cilium_to_canal", "cilium": "kkp_cni_canal_to_cilium"}   # by target CNI
VERSION_PARAM = {"cilium": "cilium_version", "canal": "canal_version"}
PLUMBING = ("EmptyOperator", "_BranchPythonDecoratedOperator")   # operator names of branches and joins


def _ctx():
    return get_current_context()


def take_lock(kkp, params: dict, original: dict) -> dict:
    return lock.acquire(kkp, run_name(), params.get("take_over_lock_from") or "", original)


def recorded_start(kkp, params: dict) -> dict | None:
    """The cluster as it was when the migration this run continues began (recorded by the lock this
    run holds or takes over), or None; Locked when another run holds the cluster."""
    held = lock.claimable(kkp, kkp.get_cluster().annotations, run_name(), params.get("take_over_lock_from") or "")
    return (held or {}).get("original")


def _pull(task_id: str):
    return _ctx()["ti"].xcom_pull(task_ids=task_id)


def _cluster_conf(params: dict) -> dict:
    conf = {"cluster_id": params["cluster_id"], "access": params["access"]}
    if params.get("project_id"):
        conf["project_id"] = params["project_id"]
    return conf


def proxy_rollback(params: dict, mode: str) -> dict:
    return {"dag_id": "kkp_proxy_mode", "conf": {**_cluster_conf(params), "proxy_mode": mode,
                                                 "take_over_lock_from": run_name()}}


def rollback_for(params: dict, original: dict) -> dict:
    """The DAG and conf that take the cluster back to where preflight found it."""
    back = original["cni_type"]
    return {"dag_id": MIGRATION_DAG[back], "conf": {**_cluster_conf(params), VERSION_PARAM[back]: original["cni_version"],
                                                    "take_over_lock_from": run_name()}}


@step
def preflight(source: str, target: str, allowed: tuple[str, ...]) -> dict:
    ctx = _ctx()
    params = ctx["params"]
    check_conf(params, allowed)
    kkp, user = open_cluster(params)
    try:
        pre = steps.preflight(kkp, user, source=source, target=target,
                              target_version=params[VERSION_PARAM[target]],
                              proxy_mode_after=params.get("proxy_mode_after", "keep"),
                              resume=recorded_start(kkp, params))
    except NothingToDo as exc:
        ctx["ti"].xcom_push(key="noop", value=str(exc))
        raise
    pre["lock"] = take_lock(kkp, params, pre["original"])
    pre["rollback"] = rollback_for(params, pre["original"])
    pre["markdown"] = report.switch_gate(pre, pre["rollback"])
    return pre


@step
def switch_cni(target: str) -> dict:
    params = _ctx()["params"]
    window_guard(params, f"the switch to {target}")
    kkp = open_kkp(params)
    return steps.switch_cni(kkp, target, params[VERSION_PARAM[target]])


@step
def preflight_proxy_mode(allowed: tuple[str, ...]) -> dict:
    ctx = _ctx()
    params = ctx["params"]
    check_conf(params, allowed)
    kkp = open_kkp(params)
    try:
        pre = steps.preflight_proxy_mode(kkp, params["proxy_mode"], resume=recorded_start(kkp, params))
    except NothingToDo as exc:
        ctx["ti"].xcom_push(key="noop", value=str(exc))
        raise
    pre["lock"] = take_lock(kkp, params, pre["original"])
    pre["rollback"] = proxy_rollback(params, pre["original"]["proxy_mode"])
    return pre


@step
def plan_proxy_mode(mode_param: str) -> dict:
    params = _ctx()["params"]
    kkp = open_kkp(params)
    info = kkp.get_cluster()
    mode = params[mode_param]
    pre = {"cluster": steps.cluster_summary(info), "target": {"proxy_mode": mode},
           "original": {"cni_type": info.cni_type, "cni_version": info.cni_version, "proxy_mode": info.proxy_mode}}
    return {"before": info.proxy_mode, "mode": mode,
            "markdown": report.proxy_gate(pre, proxy_rollback(params, info.proxy_mode))}


@step
def set_proxy_mode(mode_param: str) -> dict:
    params = _ctx()["params"]
    window_guard(params, "the kube-proxy mode change")
    kkp = open_kkp(params)
    return steps.set_proxy_mode(kkp, params[mode_param])


@step
def restart_kube_proxy(set_task_id: str) -> dict:
    """`kubectl rollout restart daemonset kube-proxy`, once per mode change (a retry re-uses the stamp)."""
    params = _ctx()["params"]
    _, user = open_cluster(params)
    stamp = _pull(set_task_id)["changed_at"]
    return {"restartedAt": user.rollout_restart_daemonset("kube-proxy", stamp=stamp)}


@step
def verify_proxy_mode() -> dict:
    params = _ctx()["params"]
    kkp, user = open_cluster(params)
    result = steps.verify_proxy_mode(kkp, user, params["proxy_mode"])
    if not result["ok"]:
        raise MigrationError(f"Cluster {params['cluster_id']}: proxy mode {params['proxy_mode']} is not in effect "
                             f"yet: {'; '.join(result['problems'])}. Investigate, then clear this task.")
    return result


@step
def plan_pod_restart(target: str, old_cni: str, old_removed_later: bool) -> dict:
    params = _ctx()["params"]
    _, user = open_cluster(params)
    plan = steps.plan_restart(user, target)
    plan["markdown"] = report.restart_gate(plan, params["cluster_id"], target, old_cni, old_removed_later)
    for internal in ("uids", "unready", "owners"):
        plan.pop(internal)
    return plan


@step
def restart_pods(target: str, gate_task_id: str, plan_task_id: str) -> dict:
    params = _ctx()["params"]
    window_guard(params, "the pod restart")
    answer = _pull(gate_task_id) or {}
    include = bool((answer.get("params_input") or {}).get("include_without_controller"))
    _, user = open_cluster(params)
    return steps.restart_pods(user, target, include_without_controller=include,
                              parallelism=params["parallelism"], pdb_wait_seconds=params["pdb_wait_seconds"],
                              kept_manifests=(_pull(plan_task_id) or {}).get("kept_manifests") or [])


@step
def plan_cni_removal(cni: str, preflight_task_id: str) -> dict:
    params = _ctx()["params"]
    version = _pull(preflight_task_id)["original"]["cni_version"]
    _, user = open_cluster(params)
    plan = steps.plan_removal(user, cni, version)
    plan["markdown"] = report.removal_gate(plan, params["cluster_id"])
    return plan


@step
def remove_cni(cni: str, preflight_task_id: str, gate_task_id: str) -> dict:
    params = _ctx()["params"]
    window_guard(params, f"the removal of {cni}")
    version = _pull(preflight_task_id)["original"]["cni_version"]
    answer = _pull(gate_task_id) or {}
    keep = (answer.get("params_input") or {}).get("keep_shared_crds", True)
    _, user = open_cluster(params)
    return steps.remove_cni(user, cni, version, keep_shared_crds=bool(keep))


@step
def plan_machine_restart() -> dict:
    params = _ctx()["params"]
    _, user = open_cluster(params)
    mds = user.machine_deployments()
    bare = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in user.pods_without_controller())
    return {"machine_deployments": [m["metadata"]["name"] for m in mds],
            "markdown": report.machines_gate(mds, params["cluster_id"], bare)}


@step
def restart_machine_deployments() -> dict:
    ctx = _ctx()
    window_guard(ctx["params"], "the machine restart")
    kkp, user = open_cluster(ctx["params"])
    started = ctx["dag_run"].start_date
    return steps.restart_machine_deployments(kkp, user, int(started.timestamp() * 1e9))


@step
def recreate_missing_pods(restart_task_id: str) -> dict:
    params = _ctx()["params"]
    _, user = open_cluster(params)
    return steps.recreate_missing_pods(user, _pull(restart_task_id)["pods_without_controller"])


@step
def verify(target: str, preflight_task_id: str, restart_task_id: str) -> dict:
    params = _ctx()["params"]
    original = _pull(preflight_task_id)["original"]
    left_alone = (_pull(restart_task_id) or {}).get("left_alone") or []
    kkp, user = open_cluster(params)
    result = steps.verify(kkp, user, target, original["cni_type"], original["cni_version"], left_alone)
    if not result["ok"]:
        raise MigrationError(f"Cluster {params['cluster_id']} is not healthy on {target} yet: "
                             f"{'; '.join(result['problems'])}. Investigate, then clear this task to check again.")
    return result


def _answer(task_id: str) -> dict | None:
    ans = _pull(task_id)
    if not ans or not ans.get("chosen_options"):
        return None
    who = ans.get("responded_by_user") or {}
    return {"gate": task_id, "answer": ans["chosen_options"][0], "by": who.get("name") or who.get("id") or "?",
            "at": str(ans.get("responded_at", "")), "params": ans.get("params_input") or {}}


def _settle_lock(params: dict, held: dict, keep: bool) -> str:
    """Release the cluster's lock, unless the run stopped half-way: then it stays with this run."""
    taken = f" (taken over from {held['took_over_from']})" if held.get("took_over_from") else ""
    if keep:
        return (f"This run keeps the lock of cluster {params['cluster_id']}{taken}: the cluster is half-way. The "
                f"rollback conf above takes it over (take_over_lock_from={run_name()!r}).")
    lock.release(open_kkp(params), run_name())
    return f"Released the lock of cluster {params['cluster_id']}{taken}."


def _finished_tasks(ti, gate_task_ids: list[str]) -> list[dict]:
    """The run's finished tasks with their durations (Airflow's own), and what each is to the report:
    a gate (its time is the approver's), plumbing (branches and joins) or work."""
    return [{"task_id": b["task_id"], "state": b["state"], "seconds": b["duration"],
             "kind": "gate" if b["task_id"] in gate_task_ids else "plumbing" if b["operator"] in PLUMBING else "work"}
            for b in ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=ti.run_id)]


def run_report(title: str, preflight_task_id: str, switch_task_id: str, gate_task_ids: list[str],
               verify_task_id: str, stop_option: str) -> dict:
    """The run's last task: what changed, who approved what and when, how long each step took,
    and, if the run did not finish, how to go back."""
    ctx = _ctx()
    ti, params = ctx["ti"], ctx["params"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    pre = _pull(preflight_task_id)
    noop = ti.xcom_pull(task_ids=preflight_task_id, key="noop")
    approvals = [a for a in (_answer(g) for g in gate_task_ids) if a]
    stopped = next((a for a in approvals if a["answer"] == stop_option), None)
    failed = sorted(t for t, s in states.items() if s == "failed" and t != ti.task_id)
    verified = _pull(verify_task_id)
    switched = states.get(switch_task_id) == "success"
    errors = {t: ti.xcom_pull(task_ids=t, key="error") for t in failed}
    if noop:
        outcome = f"nothing to do: {noop}"
    elif failed:
        outcome = "FAILED at " + "; ".join(f"{t}: {errors[t]}" if errors[t] else t for t in failed)
    elif stopped:
        outcome = (f"STOPPED at {stopped['gate']} by {stopped['by']} ({report.moment(stopped['at'])}); nothing after "
                   "it changed")
    elif verified and verified.get("ok"):
        outcome = "completed and verified"
    else:
        outcome = "incomplete"
    sections = []
    if pre:
        sections.append(("Cluster", report.before_after_table(pre["original"],
                                                              (verified or {}).get("cluster"))))
    sections.append(("Approvals", report.approvals_table(approvals)))
    steps = [node.node_id for node in ctx["dag"].task_group.topological_sort()]   # the runbook's steps, in order
    sections.append(("Steps", report.steps_table(_finished_tasks(ti, gate_task_ids), steps,
                                                 stopped["gate"] if stopped else None)))
    rollback = pre.get("rollback") if pre else None
    half_way = switched and outcome != "completed and verified"
    if rollback and half_way:
        sections.append(("Rollback", report.conf_block(rollback["dag_id"], rollback["conf"])))
    if pre and pre.get("lock"):
        sections.append(("Lock", _settle_lock(params, pre["lock"], keep=half_way)))
    name = pre["cluster"]["name"] if pre else None
    md = report.run_report(f"{title}: cluster {name} (`{params['cluster_id']}`)" if name else
                           f"{title}: cluster {params['cluster_id']}", outcome, sections)
    log.info("\n%s", md)
    result = {"outcome": outcome, "markdown": md, "approvals": approvals, "failed": failed, "errors": errors,
              "rollback": rollback if switched else None}
    ti.xcom_push(key="report", value=result)
    if failed or (stopped and switched):
        raise AirflowFailException(f"Cluster {params['cluster_id']}: {outcome.rstrip('.')}." + (
            f" To go back, trigger {rollback['dag_id']} with {json.dumps(rollback['conf'])}."
            if rollback and switched else ""))
    return result
