"""Changing the kube-proxy mode (ipvs / iptables / ebpf) of a KKP user cluster, one run per cluster."""

from __future__ import annotations

from airflow.sdk import Param, dag

from kkp_migration.airflow import groups
from kkp_migration.airflow.params import RUNBOOK, cluster_params, wait_params

PARAMS = {
    **cluster_params(),
    "proxy_mode": Param("iptables", type="string", enum=["iptables", "ipvs", "ebpf"], title="Proxy mode",
                        values_display={"iptables": "iptables", "ipvs": "ipvs (not with Cilium: known issue)",
                                        "ebpf": "ebpf (Cilium kube-proxy replacement; needs Konnectivity)"},
                        description="The kube-proxy mode to move to."),
    "restart_machine_deployments": Param(True, type="boolean", title="Restart machine deployments (step 4)",
                                         description="Roll every machine so no node keeps old iptables/ipvs rules."),
    **wait_params(proxy_mode=15, machines_rolled=120),
}
DOC = f"""
# Changing the kube-proxy mode ([runbook]({RUNBOOK}#changing-the-kube-proxy-mode))

1. label the cluster `unsafe-cni-migration` and 2. set `spec.clusterNetwork.proxyMode`;
3. to or from `ebpf`: wait until every Cilium pod is redeployed (and kube-proxy removed, or back);
   between `ipvs` and `iptables`: wait until the `kube-proxy` ConfigMap carries the new mode, then
   `kubectl rollout restart daemonset kube-proxy` and wait for the rollout;
4. rolling restart of the machine deployments (optional, approved separately);
then verify and report. `ebpf` is refused before any change unless the cluster runs Cilium with
Konnectivity; a cluster already in the requested mode ends the run as a no-op.
"""


@dag(
    dag_id="kkp_proxy_mode",
    params=PARAMS,
    doc_md=DOC,
    tags=["kkp", "cni-migration", "kube-proxy"],
    **groups.DAG_DEFAULTS,
)
def kkp_proxy_mode():
    (
        groups.preflight_proxy_mode(tuple(PARAMS))
        >> groups.change_proxy_mode("step_1_3_change_proxy_mode", "proxy_mode")
        >> groups.restart_machines("step_4_restart_machines")
        >> groups.verify_proxy_mode()
        >> groups.report("kube-proxy mode", [
            "step_1_3_change_proxy_mode.approve_proxy_mode", "step_4_restart_machines.approve_machine_restart"],
            change_task_id="step_1_3_change_proxy_mode.set_proxy_mode")
    )


kkp_proxy_mode()
