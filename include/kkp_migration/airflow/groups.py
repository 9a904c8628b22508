"""The runbook's steps as task groups, so each DAG file only puts them in the runbook's order.

A step two DAGs share is built here once (the pod restart, the CNI removal, the machine
restart, the proxy-mode change); task bodies import the heavy library lazily, keeping DAG
parsing cheap.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, TaskGroup, TriggerRule, task

from .gates import STOP, MigrationGate, counted
from .notify import FAILED, FINISHED, MigrationNotifier
from .sensors import ClusterWaitSensor
from .window import MaintenanceWindowSensor

CNI = {"canal": "Canal", "cilium": "Cilium"}
# What every migration DAG shares: triggered per cluster, owned by the platform team, retried on
# transient failures (errors a person must fix fail at once), a failure announced, many clusters in parallel.
DAG_DEFAULTS = dict(
    schedule=None,
    catchup=False,
    default_args={"owner": "platform", "retries": 2, "retry_delay": timedelta(seconds=20),
                  "on_failure_callback": MigrationNotifier(FAILED)},
    max_active_runs=16,
    render_template_as_native_obj=True,
)
PREFLIGHT = "preflight"
SWITCH = "step_1_2_switch_cni"


def in_window():
    """The run's first task: outside its maintenance window the run waits or stops before preflight."""
    return MaintenanceWindowSensor(task_id="maintenance_window",
                                   doc_md="Waits for (or, with outside_window=stop, refuses outside) the run's "
                                          "maintenance window before anything, even the lock, is taken.")


def preflight(source: str, target: str, allowed: tuple[str, ...]):
    @task(task_id=PREFLIGHT, doc_md=f"**Preflight** (no change): the cluster exists, is healthy and runs "
                                    f"{CNI[source]}; records its CNI version, proxy mode and Konnectivity for "
                                    f"rollback and removal; checks the {CNI[target]} version.")
    def run():
        from kkp_migration.airflow import tasks
        return tasks.preflight(source, target, allowed)
    checked = run()
    in_window() >> checked
    return checked


def switch_cni(target: str, version_param: str) -> TaskGroup:
    """Runbook steps 1-2: label, switch spec.cniPlugin, wait until KKP deployed the new CNI."""
    with TaskGroup(SWITCH, tooltip=f"Steps 1-2: label the cluster and switch to {CNI[target]}") as group:
        gate = MigrationGate(task_id="approve_switch", plan_task_id=PREFLIGHT,
                             proceed=f"Switch to {CNI[target]} " + "{{ params.%s }}" % version_param,
                             acts=f"the switch to {CNI[target]}",
                             subject="Switch cluster {{ params.cluster_id }} to " + CNI[target] + " {{ params."
                                     + version_param + " }}?")

        @task(doc_md=f"Steps 1-2: `unsafe-cni-migration: \"true\"` and `spec.cniPlugin: {target} <version>` in "
                     "one update; a no-op when already done.")
        def label_and_switch():
            from kkp_migration.airflow import tasks
            return tasks.switch_cni(target)

        wait = ClusterWaitSensor(task_id=f"wait_{target}_ready", wait=f"{target}_ready",
                                 timeout_param="cni_ready_timeout_minutes",
                                 doc_md=f"Waits (deferred, watching) until KKP has deployed {CNI[target]} and its "
                                        "DaemonSet is ready on every node (up to 5 minutes before it starts).")
        gate >> label_and_switch() >> wait
    return group


def restart_pods(group_id: str, target: str, old_cni: str, old_removed_later: bool) -> TaskGroup:
    """Runbook step 3 (Canal -> Cilium) or 5 (Cilium -> Canal): restart non-host-network pods."""
    with TaskGroup(group_id, tooltip=f"Restart non-host-network pods onto {CNI[target]}") as group:
        @task(doc_md="Counts the pods to restart per namespace and those left alone, for the approval.")
        def plan_pod_restart():
            from kkp_migration.airflow import tasks
            return tasks.plan_pod_restart(target, old_cni, old_removed_later)

        gate = MigrationGate(
            task_id="approve_pod_restart", proceed="Restart " + counted("pod", "to_restart"),
            plan_task_id=f"{group_id}.plan_pod_restart",
            acts="the pod restart",
            subject="Restart the pods of cluster {{ params.cluster_id }} onto " + CNI[target] + "?",
            params={"include_without_controller": Param(
                False, type="boolean", title="Include pods without a controller",
                description="Delete and re-create them from their own manifest (nothing else would).")})

        @task(doc_md="Evicts every planned pod (PDBs honoured), in parallel, with progress in the log.")
        def restart():
            from kkp_migration.airflow import tasks
            return tasks.restart_pods(target, f"{group_id}.approve_pod_restart", f"{group_id}.plan_pod_restart")

        wait = ClusterWaitSensor(
            task_id=f"wait_pods_managed_by_{target}", wait="pods_managed",
            wait_args={"cni": target, "exclude": "{{ ti.xcom_pull(task_ids='%s.restart')['left_alone'] }}"
                                                 % group_id},
            timeout_param="pods_managed_timeout_minutes",
            doc_md=f"Every pod wired by {CNI[target]} (for Cilium: `cilium status`'s Cluster Pods N/N).")
        plan_pod_restart() >> gate >> restart() >> wait
    return group


def remove_cni(group_id: str, cni: str) -> TaskGroup:
    """Runbook step 4: delete the old CNI's objects of the version preflight recorded."""
    with TaskGroup(group_id, tooltip=f"Step 4: delete {CNI[cni]}") as group:
        @task(task_id=f"plan_{cni}_removal", doc_md=f"Lists the {CNI[cni]} objects of the recorded version "
                                                    "that exist now.")
        def plan():
            from kkp_migration.airflow import tasks
            return tasks.plan_cni_removal(cni, PREFLIGHT)

        gate = MigrationGate(
            task_id=f"approve_{cni}_removal", proceed="Delete " + counted(f"{CNI[cni]} object", "objects"),
            plan_task_id=f"{group_id}.plan_{cni}_removal", acts=f"the removal of {CNI[cni]}",
            subject=f"Delete {CNI[cni]} from cluster " + "{{ params.cluster_id }}?",
            params={"keep_shared_crds": Param(
                True, type="boolean", title="Keep shared CRDs",
                description="Keep CRDs the manifest carries that are not the CNI's own (deleting one deletes "
                            "every object of its kind, e.g. every AdminNetworkPolicy).")})

        @task(task_id=f"delete_{cni}_objects", doc_md=f"What `kubectl delete -f` of {CNI[cni]}'s manifest does, "
                                                      "tolerating objects already gone.")
        def delete():
            from kkp_migration.airflow import tasks
            return tasks.remove_cni(cni, PREFLIGHT, f"{group_id}.approve_{cni}_removal")

        plan() >> gate >> delete()
    return group


def restart_machines(group_id: str) -> TaskGroup:
    """Runbook step 6 (optional): rolling restart of the machine deployments."""
    with TaskGroup(group_id, tooltip="Rolling restart of the machine deployments") as group:
        @task.branch(doc_md="Skips this step when restart_machine_deployments is off.")
        def requested(params=None):
            return f"{group_id}.plan_machine_restart" if params["restart_machine_deployments"] else \
                f"{group_id}.not_requested"

        @task(doc_md="Lists the machine deployments that will be rolled.")
        def plan_machine_restart():
            from kkp_migration.airflow import tasks
            return tasks.plan_machine_restart()

        gate = MigrationGate(task_id="approve_machine_restart",
                             proceed="Restart " + counted("machine deployment", "machine_deployments"),
                             plan_task_id=f"{group_id}.plan_machine_restart", acts="the machine restart",
                             subject="Replace every machine of cluster {{ params.cluster_id }}?")

        @task(doc_md="KKP's restart of each machine deployment, once per run.")
        def restart_machine_deployments():
            from kkp_migration.airflow import tasks
            return tasks.restart_machine_deployments()

        done_by = f"ti.xcom_pull(task_ids='{group_id}.restart_machine_deployments')"
        wait = ClusterWaitSensor(
            task_id="wait_machines_rolled", wait="machine_deployments_rolled",
            wait_args={"names": "{{ %s['machine_deployments'] }}" % done_by,
                       "since_ns": "{{ %s['since_ns'] }}" % done_by},
            timeout_param="machines_rolled_timeout_minutes")
        @task(doc_md="Creates again, from the manifests kept before the roll, each pod without a controller "
                     "that a drained node took.")
        def recreate_pods_without_controller():
            from kkp_migration.airflow import tasks
            return tasks.recreate_missing_pods(f"{group_id}.restart_machine_deployments")

        choice = requested()
        done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        choice >> plan_machine_restart() >> gate >> restart_machine_deployments() >> wait
        wait >> recreate_pods_without_controller() >> done
        choice >> EmptyOperator(task_id="not_requested") >> done
    return group


def verify(target: str, restart_group_id: str):
    @task(task_id="verify", doc_md=f"**Verify**: all nodes Ready, all pods Running or Succeeded, {CNI[target]} "
                                   "manages every pod, no object of the old CNI left, the Cluster says "
                                   f"{CNI[target]}.")
    def run():
        from kkp_migration.airflow import tasks
        return tasks.verify(target, PREFLIGHT, f"{restart_group_id}.restart")
    return run()


def report(title: str, gates: list[str], change_task_id: str = f"{SWITCH}.label_and_switch"):
    """`change_task_id` is the first task that changes the cluster: after it, a stop needs a rollback."""
    @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE, on_success_callback=MigrationNotifier(FINISHED),
          doc_md="The run's report (the run page's *Migration report* tab, XCom `report`, this task's log): "
                 "before/after, approvals (who, when, with what), step timings, and the rollback conf if the "
                 "run stopped after the change.")
    def run():
        from kkp_migration.airflow import tasks
        return tasks.run_report(title, PREFLIGHT, change_task_id, gates, "verify", STOP)
    return run()


def preflight_proxy_mode(allowed: tuple[str, ...]):
    @task(task_id=PREFLIGHT, doc_md="**Preflight** (no change): the mode differs from the current one; ebpf only "
                                    "with Cilium and Konnectivity; records the current mode for rollback.")
    def run():
        from kkp_migration.airflow import tasks
        return tasks.preflight_proxy_mode(allowed)
    checked = run()
    in_window() >> checked
    return checked


def change_proxy_mode(group_id: str, mode_param: str, optional: bool = False) -> TaskGroup:
    """"Changing the Kube-Proxy Mode", steps 1-3: label and set spec.clusterNetwork.proxyMode to the
    mode in `mode_param`; then, to/from ebpf, wait for the Cilium pods' redeploy, or between ipvs and
    iptables wait for the kube-proxy ConfigMap, restart kube-proxy and wait for its rollout.
    `optional`: skipped when the param says "keep" (Canal -> Cilium's step 5)."""
    with TaskGroup(group_id, tooltip="Change the kube-proxy mode") as group:
        mode = "{{ params.%s }}" % mode_param
        done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

        @task(doc_md="Reads the current mode and says what the change will do, for the approval.")
        def plan_proxy_mode():
            from kkp_migration.airflow import tasks
            return tasks.plan_proxy_mode(mode_param)

        gate = MigrationGate(task_id="approve_proxy_mode", proceed="Switch kube-proxy to " + mode,
                             plan_task_id=f"{group_id}.plan_proxy_mode", acts="the kube-proxy mode change",
                             subject="Change the kube-proxy mode of cluster {{ params.cluster_id }} to " + mode + "?")

        @task(doc_md="`unsafe-cni-migration: \"true\"` and `spec.clusterNetwork.proxyMode`, one update; a "
                     "no-op when already set.")
        def set_proxy_mode():
            from kkp_migration.airflow import tasks
            return tasks.set_proxy_mode(mode_param)

        @task.branch(doc_md="Which wait the runbook prescribes for this change.")
        def which_wait(ti=None):
            plan = ti.xcom_pull(task_ids=f"{group_id}.plan_proxy_mode")
            via_cilium = "ebpf" in (plan["before"], plan["mode"])
            return f"{group_id}.{'wait_cilium_redeployed' if via_cilium else 'wait_kube_proxy_configmap'}"

        changed = f"ti.xcom_pull(task_ids='{group_id}.set_proxy_mode')"
        via_cilium = ClusterWaitSensor(
            task_id="wait_cilium_redeployed", wait="proxy_mode_via_cilium",
            wait_args={"mode": mode, "since": "{{ %s['changed_at'] }}" % changed},
            timeout_param="proxy_mode_timeout_minutes",
            doc_md="Every Cilium pod redeployed after the change (and kube-proxy gone for ebpf, back otherwise).")
        configmap = ClusterWaitSensor(
            task_id="wait_kube_proxy_configmap", wait="kube_proxy_mode", wait_args={"mode": mode},
            timeout_param="proxy_mode_timeout_minutes",
            doc_md="`kubectl get configmap kube-proxy -n kube-system -oyaml | grep mode`, watched.")

        @task(doc_md="`kubectl rollout restart daemonset kube-proxy -n kube-system`.")
        def restart_kube_proxy():
            from kkp_migration.airflow import tasks
            return tasks.restart_kube_proxy(f"{group_id}.set_proxy_mode")

        rolled = ClusterWaitSensor(task_id="wait_kube_proxy_rolled", wait="daemonset_rolled",
                                   wait_args={"name": "kube-proxy"}, timeout_param="proxy_mode_timeout_minutes",
                                   doc_md="Every kube-proxy pod restarted and ready.")
        plan = plan_proxy_mode()
        if optional:
            @task.branch(doc_md=f"Skips this step when {mode_param} is keep.")
            def requested(params=None):
                return f"{group_id}.not_requested" if params[mode_param] == "keep" else \
                    f"{group_id}.plan_proxy_mode"
            choice = requested()
            choice >> plan
            choice >> EmptyOperator(task_id="not_requested") >> done
        wait = which_wait()
        plan >> gate >> set_proxy_mode() >> wait
        wait >> via_cilium >> done
        wait >> configmap >> restart_kube_proxy() >> rolled >> done
    return group


def verify_proxy_mode():
    @task(task_id="verify", doc_md="**Verify**: the Cluster, kube-proxy (or its absence with ebpf) and Cilium all "
                                   "agree on the new mode.")
    def run():
        from kkp_migration.airflow import tasks
        return tasks.verify_proxy_mode()
    return run()
