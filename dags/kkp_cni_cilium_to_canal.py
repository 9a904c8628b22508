"""Cilium -> Canal: the runbook's way back (and the rollback of a Canal -> Cilium run)."""

from __future__ import annotations

from airflow.sdk import Param, dag

from kkp_migration import versions
from kkp_migration.airflow import groups
from kkp_migration.airflow.params import RUNBOOK, cluster_params, wait_params

PARAMS = {
    **cluster_params(),
    "canal_version": Param(versions.default("canal"), type="string", enum=list(versions.accepted("canal")),
                           values_display={v: f"{v} (deprecated: accepted for a rollback)"
                                           for v in versions.deprecated("canal")},
                           title="Canal version", description="The Canal version to go (back) to; a rollback "
                                                              "uses the version the cluster ran before."),
    "restart_machine_deployments": Param(True, type="boolean", title="Restart machine deployments (step 5)",
                                         description="Roll every machine so no node keeps Cilium leftovers."),
    **wait_params(cni_ready=15, pods_managed=30, machines_rolled=120),
}
DOC = f"""
# Cilium -> Canal ([runbook]({RUNBOOK}#migrating-user-cluster-with-cilium-cni-to-canal-cni))

The runbook's Canal -> Cilium steps with its changes for the way back:

1. label the cluster `unsafe-cni-migration` and 2. switch `spec.cniPlugin` to Canal, then wait until
   Canal is ready;
3. skipped: restarting pods while Cilium runs would have no effect;
4. delete Cilium (KKP's `cilium` ApplicationInstallation first, since KKP re-installs whatever is
   deleted while it exists, then what `helm template cilium` would delete, then Cilium's CRDs);
5. restart every non-host-network pod so Canal wires it (pods have no network from step 4 until
   then), and the rolling restart of the machine deployments;
then verify and report. Clusters in kube-proxy mode ebpf are refused before any change: Canal needs
kube-proxy, so run `kkp_proxy_mode` with iptables first.

This DAG is also the rollback of `kkp_cni_canal_to_cilium`: its report gives the conf to use.
"""


@dag(
    dag_id="kkp_cni_cilium_to_canal",
    params=PARAMS,
    doc_md=DOC,
    tags=["kkp", "cni-migration", "cilium-to-canal", "rollback"],
    **groups.DAG_DEFAULTS,
)
def kkp_cni_cilium_to_canal():
    (
        groups.preflight("cilium", "canal", tuple(PARAMS))
        >> groups.switch_cni("canal", "canal_version")
        >> groups.remove_cni("step_4_remove_cilium", "cilium")
        >> groups.restart_pods("step_5_restart_pods", "canal", old_cni="cilium", old_removed_later=False)
        >> groups.restart_machines("step_5_restart_machines")
        >> groups.verify("canal", "step_5_restart_pods")
        >> groups.report("Cilium -> Canal", [
            "step_1_2_switch_cni.approve_switch", "step_4_remove_cilium.approve_cilium_removal",
            "step_5_restart_pods.approve_pod_restart", "step_5_restart_machines.approve_machine_restart"])
    )


kkp_cni_cilium_to_canal()
