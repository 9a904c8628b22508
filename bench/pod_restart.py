"""1. Pod restart on a big cluster: the DAG's restart step against the runbook's step-3 pipeline
and against the lab's own limit, on identical fresh clusters of one lab.

The pipeline restarts one pod per `kubectl` process, so running it over 5,000 pods would take
most of the run's budget: it runs for PIPELINE_SECONDS and its full time is projected from its
steady rate (it is strictly sequential, so the rate does not change). The lab's limit is a tight
loop of concurrent evictions on a cluster without budgets, i.e. every request succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from . import labkit
from .report import at_least, row

PODS, NODES = 5000, 100
TIME_FACTOR = 0.01            # a pod starts in 20 ms, a 30 s grace period ends in 0.3 s
PIPELINE_SECONDS = 45.0
LIMIT_CONCURRENCY = 64
PIPELINE = ("kubectl get pods --all-namespaces -o custom-columns=NAMESPACE:.metadata.namespace,"
            "NAME:.metadata.name,HOSTNETWORK:.spec.hostNetwork --no-headers=true | grep '<none>' | "
            "awk '{print \"-n \"$1\" \"$2}' | xargs -L 1 -r kubectl delete pod")
BENCH = "1 pod restart"


def _client(*args: str) -> dict:
    import json
    out = subprocess.run([sys.executable, "-m", "bench.restart_clients", *args], capture_output=True, text=True,
                         timeout=600, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"restart client {args[0]} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _deletes(lab, user) -> int:
    return lab.call(lambda: user.api.requests[("delete", "pods")])


def run_pipeline(lab, user, kubeconfig: str) -> dict:
    """The runbook's pipeline for PIPELINE_SECONDS: when its first delete landed, how many since."""
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    started = time.monotonic()
    proc = subprocess.Popen(["bash", "-c", PIPELINE], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first_at = None
    try:
        while time.monotonic() - started < PIPELINE_SECONDS and proc.poll() is None:
            time.sleep(0.05)
            if first_at is None and _deletes(lab, user):
                first_at = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    elapsed = time.monotonic() - started
    return {"first_delete_s": first_at, "deleted": _deletes(lab, user), "elapsed_s": elapsed,
            "finished": proc.returncode == 0}


def run(results_dir: str) -> dict:
    lab, kkp = labkit.start(TIME_FACTOR)
    try:
        users = {k: labkit.add_cluster(kkp, f"restart-{k}", pods=PODS, nodes=NODES)
                 for k in ("dag", "dag-nopdb", "pipeline", "limit")}
        planned = lab.call(labkit.network_pods, users["dag"].store)
        files = {k: labkit.kubeconfig_file(u.api) for k, u in users.items()}

        def drop_budgets(store):
            rt = store.rtype("policy", "poddisruptionbudgets")
            for pdb in store.items(rt):
                store.delete(rt, pdb["metadata"]["namespace"], pdb["metadata"]["name"])
        lab.call(drop_budgets, users["limit"].store)
        lab.call(drop_budgets, users["dag-nopdb"].store)
        limit = _client("limit", files["limit"], str(LIMIT_CONCURRENCY))
        unbudgeted = _client("dag", files["dag-nopdb"])

        dag = _client("dag", files["dag"])
        dag["pdb_violations"] = lab.call(lambda: len(users["dag"].api.pdb_violations))

        pipe = run_pipeline(lab, users["pipeline"], files["pipeline"])
        pipe["pdb_violations"] = lab.call(lambda: len(users["pipeline"].api.pdb_violations))
    finally:
        lab.stop()

    dag_rate = dag["planned"] / dag["seconds"]
    limit_rate = limit["codes"].get("201", 0) / limit["seconds"]
    per_pod = (pipe["elapsed_s"] - pipe["first_delete_s"]) / max(1, pipe["deleted"] - 1)
    pipe_seconds = pipe["elapsed_s"] if pipe["finished"] else pipe["first_delete_s"] + per_pod * planned
    pipe_rate = planned / pipe_seconds
    vs_pipeline, vs_limit = dag_rate / pipe_rate, dag_rate / limit_rate
    rows = [
        row(BENCH, f"DAG restart step, {planned:,} network pods on {NODES} nodes (evictions, {dag['pdb_violations']}"
                   " PDB violations)", f"{dag['seconds']:.1f} s = {dag_rate:.0f} pods/s", "PDBs honoured",
            "met" if dag["pdb_violations"] == 0 and dag["evicted"] + dag["gone"] == dag["planned"] else
            f"MISSED: {dag['pdb_violations']} PDB violations"),
        row(BENCH, f"runbook step-3 pipeline, same cluster size ({pipe['deleted']} pods deleted in "
                   f"{pipe['elapsed_s']:.0f} s, {'finished' if pipe['finished'] else 'projected to all pods'}; "
                   f"{pipe['pdb_violations']} PDB violations)",
            f"{pipe_seconds:.0f} s = {pipe_rate:.1f} pods/s"),
        row(BENCH, f"lab limit: {LIMIT_CONCURRENCY} concurrent evictions in a tight loop, no PDBs",
            f"{limit['seconds']:.1f} s = {limit_rate:.0f} evictions/s"),
        row(BENCH, "diagnostic: the DAG step on the same cluster without PDBs (how much the budgets cost)",
            f"{unbudgeted['seconds']:.1f} s = {unbudgeted['planned'] / unbudgeted['seconds']:.0f} pods/s = "
            f"{100 * unbudgeted['planned'] / unbudgeted['seconds'] / limit_rate:.0f}% of the lab limit"),
        row(BENCH, "DAG step / pipeline speed", f"{vs_pipeline:.1f}x", ">= 20x", at_least(vs_pipeline, 20, "x")),
        row(BENCH, "DAG step / lab limit", f"{100 * vs_limit:.0f}%", ">= 70%", at_least(100 * vs_limit, 70, "%")),
    ]
    return {"rows": rows, "raw": {"dag": dag, "dag_without_pdbs": unbudgeted, "pipeline": pipe, "limit": limit, "planned": planned}}
