"""2, second half: wait detection through Airflow, with dag.test() (the trigger run inline in the
task's process, not a separate triggerer and scheduler), on small lab clusters migrated by the
real Canal -> Cilium DAG.

For the DAG's two CNI waits: lab condition true -> trigger event -> sensor task success; the
last leg is Airflow's own resume overhead. A condition can turn true before its sensor has even
started (pods are managed by Cilium moments after the restart); such samples are marked.
"""

from __future__ import annotations

from . import airflow_home, labkit, migration, waiting
from .report import row

RUNS = 2
TIME_FACTOR = 0.01
ROLLOUT_DELAY = 300.0         # 3 s: KKP's rollout lands after the sensor has deferred
BENCH = "2 wait detection"
WAITS = {"cilium_ready": "step_1_2_switch_cni.wait_cilium_ready",
         "pods_managed": "step_3_restart_pods.wait_pods_managed_by_cilium"}


def measure(results_dir: str) -> dict:
    samples = {w: [] for w in WAITS}
    lab, kkp = labkit.start(TIME_FACTOR, rollout_delay=ROLLOUT_DELAY)
    try:
        users = [labkit.add_cluster(kkp, f"airflow-wait-{i}", pods=60, nodes=3) for i in range(RUNS)]
        airflow_home.lab_connections(lab, kkp, results_dir)
        for user in users:
            probes = {"cilium_ready": waiting.cilium_ready(lab, user.store),
                      "pods_managed": waiting.pods_managed(lab, user.store)}
            result = migration.migrate(lab, user, machines=False)
            for wait, task_id in WAITS.items():
                event = next(e["at"] for e in result["events"] if e["wait"] == wait)
                task = result["tasks"][task_id]
                true_at = probes[wait].wait(0)
                samples[wait].append({"true_to_event": event - true_at, "event_to_success": task["end"] - event,
                                      "true_before_sensor": true_at < task["start"]})
    finally:
        lab.stop()
    rows = []
    for wait, values in samples.items():
        early = sum(s["true_before_sensor"] for s in values)
        rows.append(row(BENCH, f"dag.test(): {wait} true -> trigger event -> task success ({len(values)} runs"
                               f"{f', {early} true before the sensor started' if early else ''})",
                        " / ".join(f"{1000 * s['true_to_event']:.0f} ms -> +{1000 * s['event_to_success']:.0f} ms"
                                   for s in values), "reported"))
    overhead = [s["event_to_success"] for v in samples.values() for s in v]
    rows.append(row(BENCH, "Airflow's resume overhead (trigger event -> task success, dag.test)",
                    f"max {1000 * max(overhead):.0f} ms over {len(overhead)} resumes", "reported separately"))
    return {"rows": rows, "raw": samples}
