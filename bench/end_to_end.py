"""6. End to end: a full Canal -> Cilium migration (steps 1-7, machine deployments rolled) of a
1,000-pod lab cluster through the real DAG, gates answered by a thread.

The lab runs with time factor 0, so none of its simulated delays (KKP's rollout delay, pod
starts, node joins, grace periods) take wall time. What is left of the wall time besides the
project's own work is measured and taken off: the time gates stood until the answering thread
(it polls every 0.3 s) saw them, and the CPU time of the lab's thread (the simulated clusters'
API servers and controllers, which share this process).
"""

from __future__ import annotations

from . import airflow_home, labkit, migration
from .report import row

PODS, NODES = 1000, 20
BENCH = "6 end to end"


def run(results_dir: str) -> dict:
    lab, kkp = labkit.start(0.0)
    try:
        user = labkit.add_cluster(kkp, "e2e", pods=PODS, nodes=NODES)
        airflow_home.lab_connections(lab, kkp, results_dir)
        result = migration.migrate(lab, user, machines=True)
    finally:
        lab.stop()
    overhead = result["wall_s"] - result["gate_s"] - result["lab_cpu_s"]
    rows = [row(BENCH, f"Canal -> Cilium, {PODS:,} pods on {NODES} nodes, machines rolled: wall time",
                f"{result['wall_s']:.1f} s", "reported"),
            row(BENCH, "project overhead = wall - gate answer latency - lab CPU (simulated delays take 0 s)",
                f"{overhead:.1f} s (gates {result['gate_s']:.1f} s, lab CPU {result['lab_cpu_s']:.1f} s)",
                "reported")]
    slowest = sorted(((t["end"] - t["start"], k) for k, t in result["tasks"].items() if t["start"] and t["end"]),
                     reverse=True)[:4]
    rows.append(row(BENCH, "slowest tasks", ", ".join(f"{k} {s:.1f} s" for s, k in slowest), "reported"))
    return {"rows": rows, "raw": result}
