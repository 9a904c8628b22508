"""The fleet rollout: every cluster of the plan migrated by its own run, canary wave first."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag

from kkp_migration.airflow import fleet
from kkp_migration.airflow.params import RUNBOOK, approvers_param
from kkp_migration.fleetplan import MAX_WAVES

DOC = f"""
# Fleet rollout

The runbook ([KKP CNI migration]({RUNBOOK})) warns that a migration causes an outage, belongs in
a maintenance window, and should first be tried on a test cluster of the same kind. This DAG does
that for a fleet, from the plan in `include/config/clusters.yaml` (or `$KKP_FLEET_PLAN`):

1. **load_plan** reads and validates the plan: each cluster's migration, maintenance window and wave;
2. **wave_0** is the canary wave: approve it, and one run of the cluster's migration DAG starts per
   cluster (`kkp_cni_canal_to_cilium`, `kkp_cni_cilium_to_canal` or `kkp_proxy_mode`);
3. **wave_1** ... start only when every run of the wave before succeeded, and after their own approval;
4. **summary** lists every cluster: done, failed (with the conf that rolls it back), not started.

Each run acts only inside its cluster's window (it waits for it, or stops, as the plan's
`outside_window` says), holds the cluster's lock (no other run, from any DAG, acts on it meanwhile),
and treats the wave's approval as the approval of its own steps, unless the plan sets
`approve_each_step` for that cluster. At most as many clusters migrate at once as the pool
`{fleet.POOL}` has slots (create it with `--include-deferred`).
"""


@dag(
    dag_id="kkp_fleet_rollout",
    params={"plan_path": Param("", type="string", title="Fleet plan file",
                               description="Path of the plan on the workers; empty: $KKP_FLEET_PLAN, else "
                                           "include/config/clusters.yaml."),
            "approvers": approvers_param("Only these Airflow users may start a wave (user ids as the auth "
                                         "manager knows them). Empty: anyone allowed to act on the DAG.")},
    doc_md=DOC,
    tags=["kkp", "cni-migration", "fleet"],
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "platform", "retries": 0, "retry_delay": timedelta(seconds=20)},
    render_template_as_native_obj=True,
)
def kkp_fleet_rollout():
    previous = fleet.load_plan()
    for number in range(MAX_WAVES):
        current = fleet.wave(number)
        previous >> current
        previous = current
    previous >> fleet.summary()


kkp_fleet_rollout()
