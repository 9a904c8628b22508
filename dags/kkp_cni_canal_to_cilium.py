"""Canal -> Cilium: KKP's "Manual CNI Migration" runbook as a DAG, one run per cluster."""

from __future__ import annotations

from airflow.sdk import Param, dag

from kkp_migration import versions
from kkp_migration.airflow import groups
from kkp_migration.airflow.params import RUNBOOK, cluster_params, wait_params

PARAMS = {
    **cluster_params(),
    "cilium_version": Param(versions.default("cilium"), type="string", enum=list(versions.supported("cilium")),
                            title="Cilium version", description="A Cilium version KKP supports."),
    "proxy_mode_after": Param("keep", type="string", enum=["keep", "iptables", "ebpf"],
                              title="kube-proxy mode afterwards (step 5)",
                              values_display={"keep": "keep the current mode",
                                              "iptables": "iptables (recommended after ipvs)",
                                              "ebpf": "ebpf (Cilium kube-proxy replacement; needs Konnectivity)"},
                              description="ipvs is not recommended with Cilium (KKP known issue)."),
    "restart_machine_deployments": Param(True, type="boolean", title="Restart machine deployments (step 6)",
                                         description="Roll every machine so no node keeps Canal leftovers."),
    **wait_params(cni_ready=15, pods_managed=30, proxy_mode=15, machines_rolled=120),
}
DOC = f"""
# Canal -> Cilium ([runbook]({RUNBOOK}#migrating-user-cluster-with-canal-cni-to-cilium-cni))

One run migrates one KKP user cluster from Canal to Cilium, in the runbook's steps:

1. label the cluster `unsafe-cni-migration` and 2. switch `spec.cniPlugin` to Cilium, then wait until
   KKP has deployed Cilium and it is ready (up to 5 minutes before the deployment starts);
3. restart every non-host-network pod so Cilium manages it (evictions, PodDisruptionBudgets honoured,
   pods without a controller left alone unless the approver includes them), and wait until
   `Cluster Pods: N/N managed by Cilium`;
4. delete the Canal objects of the version the cluster ran;
5. (optional, `proxy_mode_after`) change the kube-proxy mode, as `kkp_proxy_mode` does: ipvs is not
   recommended with Cilium;
6. (optional) rolling restart of the machine deployments;
7. verify, and report.

Every step that can hurt workloads waits for an approval (Browse -> Required Actions) that shows
exactly what it will do. A cluster already on Cilium ends the run as a no-op. If the run stops after
the switch, its report gives the conf of `kkp_cni_cilium_to_canal` that takes the cluster back.
"""


@dag(
    dag_id="kkp_cni_canal_to_cilium",
    params=PARAMS,
    doc_md=DOC,
    tags=["kkp", "cni-migration", "canal-to-cilium"],
    **groups.DAG_DEFAULTS,
)
def kkp_cni_canal_to_cilium():
    (
        groups.preflight("canal", "cilium", tuple(PARAMS))
        >> groups.switch_cni("cilium", "cilium_version")
        >> groups.restart_pods("step_3_restart_pods", "cilium", old_cni="canal", old_removed_later=True)
        >> groups.remove_cni("step_4_remove_canal", "canal")
        >> groups.change_proxy_mode("step_5_proxy_mode", "proxy_mode_after", optional=True)
        >> groups.restart_machines("step_6_restart_machines")
        >> groups.verify("cilium", "step_3_restart_pods")
        >> groups.report("Canal -> Cilium", [
            "step_1_2_switch_cni.approve_switch", "step_3_restart_pods.approve_pod_restart",
            "step_4_remove_canal.approve_canal_removal", "step_5_proxy_mode.approve_proxy_mode",
            "step_6_restart_machines.approve_machine_restart"])
    )


kkp_cni_canal_to_cilium()
