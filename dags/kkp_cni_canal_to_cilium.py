"""Canal -> Cilium: KKP's "Manual CNI Migration" runbook as a DAG, one run per cluster."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, TriggerRule, dag, task, task_group

from kkp_migration import versions
from kkp_migration.airflow.gates import STOP, MigrationGate
from kkp_migration.airflow.params import cluster_params
from kkp_migration.airflow.sensors import ClusterWaitSensor

RUNBOOK = "https://docs.kubermatic.com/kubermatic/main/tutorials-howtos/networking/cni-migration/"
PARAMS = {
    **cluster_params(),
    "cilium_version": Param(versions.default("cilium"), type="string", enum=list(versions.supported("cilium")),
                            title="Cilium version", description="A Cilium version KKP supports.",
                            section="Migration"),
    "restart_machine_deployments": Param(True, type="boolean", title="Restart machine deployments (step 6)",
                                         description="Roll every machine so no node keeps Canal leftovers.",
                                         section="Migration"),
}
DOC = f"""
# Canal -> Cilium ([runbook]({RUNBOOK}))

One run migrates one KKP user cluster from Canal to Cilium. The steps are the runbook's:

1. label the cluster `unsafe-cni-migration` and 2. switch `spec.cniPlugin` to Cilium, then wait until
   KKP has deployed Cilium and it is ready (up to 5 minutes before the deployment starts);
3. restart every non-host-network pod so Cilium manages it (evictions, PodDisruptionBudgets honoured,
   pods without a controller left alone unless the approver includes them), and wait until
   `Cluster Pods: N/N managed by Cilium`;
4. delete the Canal objects of the version the cluster ran;
6. (optional) rolling restart of the machine deployments;
7. verify, and report.

Every step that can hurt workloads waits for an approval (Browse -> Required Actions) that shows
exactly what it will do. A cluster already on Cilium ends the run as a no-op. If the run stops after
the switch, its report gives the conf of `kkp_cni_cilium_to_canal` that takes the cluster back.
"""


@dag(
    dag_id="kkp_cni_canal_to_cilium",
    schedule=None,
    catchup=False,
    params=PARAMS,
    doc_md=DOC,
    tags=["kkp", "cni-migration", "canal-to-cilium"],
    default_args={"owner": "platform", "retries": 2, "retry_delay": timedelta(seconds=20)},
    max_active_runs=16,
    render_template_as_native_obj=True,
)
def kkp_cni_canal_to_cilium():
    @task(doc_md="**Preflight** (no change): the cluster exists, is healthy and runs Canal; records the "
                 "Canal version, proxy mode and Konnectivity for rollback and removal; checks the Cilium "
                 "version and node kernels.")
    def preflight():
        from kkp_migration.airflow import tasks
        return tasks.preflight("canal", "cilium", tuple(PARAMS))

    @task_group(group_id="step_1_2_switch_cni")
    def switch():
        """Runbook steps 1-2: label the cluster and switch spec.cniPlugin to Cilium; wait for Cilium."""
        gate = MigrationGate(task_id="approve_switch", proceed="Switch to Cilium", plan_task_id="preflight",
                             subject="Switch cluster {{ params.cluster_id }} from Canal to Cilium "
                                     "{{ params.cilium_version }}?")

        @task(doc_md="Steps 1-2: `unsafe-cni-migration: \"true\"` and `spec.cniPlugin: cilium <version>`, "
                     "in one update; a no-op when already done.")
        def label_and_switch():
            from kkp_migration.airflow import tasks
            return tasks.switch_cni("cilium")

        wait = ClusterWaitSensor(task_id="wait_cilium_ready", wait="cilium_ready",
                                 wait_timeout=timedelta(minutes=15),
                                 doc_md="Waits (deferred, watching) until the cilium DaemonSet is ready on "
                                        "every node and cilium-operator is available.")
        gate >> label_and_switch() >> wait

    @task_group(group_id="step_3_restart_pods")
    def restart_pods():
        """Runbook step 3: restart all non-host-network pods so Cilium manages them."""
        @task(doc_md="Counts the pods to restart per namespace and those left alone, for the approval.")
        def plan_pod_restart():
            from kkp_migration.airflow import tasks
            return tasks.plan_pod_restart("cilium", "canal", old_removed_later=True)

        gate = MigrationGate(
            task_id="approve_pod_restart", proceed="Restart pods",
            plan_task_id="step_3_restart_pods.plan_pod_restart",
            subject="Restart the pods of cluster {{ params.cluster_id }} onto Cilium?",
            params={"include_without_controller": Param(
                False, type="boolean", title="Include pods without a controller",
                description="Delete and re-create them from their own manifest (nothing else would).")})

        @task(doc_md="Evicts every planned pod (PDBs honoured), in parallel batches, with progress in the log.")
        def restart():
            from kkp_migration.airflow import tasks
            return tasks.restart_pods("cilium", "step_3_restart_pods.approve_pod_restart")

        wait = ClusterWaitSensor(task_id="wait_pods_managed_by_cilium", wait="pods_managed",
                                 wait_args={"cni": "cilium", "exclude": "{{ ti.xcom_pull(task_ids="
                                                                        "'step_3_restart_pods.restart')"
                                                                        "['left_alone'] }}"},
                                 wait_timeout=timedelta(minutes=30),
                                 doc_md="`cilium status`'s Cluster Pods N/N: a CiliumEndpoint for every pod.")
        plan_pod_restart() >> gate >> restart() >> wait

    @task_group(group_id="step_4_remove_canal")
    def remove_canal():
        """Runbook step 4: delete the Canal resources of the version the cluster ran."""
        @task(doc_md="Lists the Canal objects of the recorded version that exist now.")
        def plan_canal_removal():
            from kkp_migration.airflow import tasks
            return tasks.plan_cni_removal("canal", "preflight")

        gate = MigrationGate(
            task_id="approve_canal_removal", proceed="Delete Canal objects",
            plan_task_id="step_4_remove_canal.plan_canal_removal",
            subject="Delete Canal from cluster {{ params.cluster_id }}?",
            params={"keep_shared_crds": Param(
                True, type="boolean", title="Keep shared CRDs",
                description="Keep the policy.networking.k8s.io CRDs the Canal manifest carries: deleting them "
                            "deletes every AdminNetworkPolicy in the cluster.")})

        @task(doc_md="`kubectl delete -f canal.yaml` for the recorded version, tolerating objects already gone.")
        def delete_canal_objects():
            from kkp_migration.airflow import tasks
            return tasks.remove_cni("canal", "preflight", "step_4_remove_canal.approve_canal_removal")

        plan_canal_removal() >> gate >> delete_canal_objects()

    @task_group(group_id="step_6_restart_machines")
    def restart_machines():
        """Runbook step 6 (optional): rolling restart of the machine deployments."""
        @task.branch(doc_md="Skips this step when restart_machine_deployments is off.")
        def requested(params=None):
            group = "step_6_restart_machines"
            return f"{group}.plan_machine_restart" if params["restart_machine_deployments"] else \
                f"{group}.not_requested"

        @task(doc_md="Lists the machine deployments that will be rolled.")
        def plan_machine_restart():
            from kkp_migration.airflow import tasks
            return tasks.plan_machine_restart()

        gate = MigrationGate(task_id="approve_machine_restart", proceed="Restart machines",
                             plan_task_id="step_6_restart_machines.plan_machine_restart",
                             subject="Replace every machine of cluster {{ params.cluster_id }}?")

        @task(doc_md="KKP's restart of each machine deployment, once per run.")
        def restart_machine_deployments():
            from kkp_migration.airflow import tasks
            return tasks.restart_machine_deployments()

        wait = ClusterWaitSensor(
            task_id="wait_machines_rolled", wait="machine_deployments_rolled",
            wait_args={"names": "{{ ti.xcom_pull(task_ids='step_6_restart_machines.restart_machine_deployments')"
                                "['machine_deployments'] }}",
                       "since_ns": "{{ ti.xcom_pull(task_ids='step_6_restart_machines."
                                   "restart_machine_deployments')['since_ns'] }}"},
            wait_timeout=timedelta(hours=2))
        skip = EmptyOperator(task_id="not_requested")
        done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        choice = requested()
        choice >> plan_machine_restart() >> gate >> restart_machine_deployments() >> wait >> done
        choice >> skip >> done

    @task(doc_md="**Step 7**: all nodes Ready, all pods Running or Succeeded, Cilium manages every pod, no "
                 "Canal object left, the Cluster says Cilium.")
    def verify():
        from kkp_migration.airflow import tasks
        return tasks.verify("cilium", "preflight", "step_3_restart_pods.restart")

    @task(trigger_rule=TriggerRule.ALL_DONE, doc_md="The run's report: before/after, approvals, timings, and "
                                                   "the rollback conf if the run stopped after the switch.")
    def report():
        from kkp_migration.airflow import tasks
        return tasks.run_report(
            "Canal -> Cilium", "preflight", "step_1_2_switch_cni.label_and_switch",
            ["step_1_2_switch_cni.approve_switch", "step_3_restart_pods.approve_pod_restart",
             "step_4_remove_canal.approve_canal_removal", "step_6_restart_machines.approve_machine_restart"],
            "verify", STOP)

    preflight() >> switch() >> restart_pods() >> remove_canal() >> restart_machines() >> verify() >> report()


kkp_cni_canal_to_cilium()
