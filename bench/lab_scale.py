"""0. The lab's own scale, which every other benchmark stands on: how long a user cluster of 5,000
pods on 100 nodes takes from creation until every pod runs, and how fast the lab serves a full pod
list to the `kubernetes` client and to `kubectl get pods -A`.
"""

from __future__ import annotations

import json
import subprocess
import time

from . import labkit
from .report import at_most, percentile, row

PODS, NODES = 5000, 100
TIME_FACTOR = 0.01
LISTS = 10
BENCH = "0 lab scale"


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def run(results_dir: str) -> dict:
    from kubernetes import client, config

    lab, kkp = labkit.start(TIME_FACTOR)
    try:
        started = time.monotonic()
        user = labkit.add_cluster(kkp, "scale", pods=PODS, nodes=NODES)
        start_seconds = time.monotonic() - started
        pods = lab.call(lambda: len(user.store.items(user.store.rtype("", "pods"))))

        cfg = client.Configuration()
        config.load_kube_config_from_dict(user.api.kubeconfig(), client_configuration=cfg)
        with client.ApiClient(cfg) as api:
            core = client.CoreV1Api(api)

            def list_all():
                body = json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)
                assert len(body["items"]) == pods
            client_lists = [timed(list_all) for _ in range(LISTS)]

        kubeconfig = labkit.kubeconfig_file(user.api)
        kubectl_lists = [timed(lambda: subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "pods", "-A"],
                                                      check=True, capture_output=True, timeout=120))
                         for _ in range(3)]
    finally:
        lab.stop()

    p50, p95 = percentile(client_lists, 50), percentile(client_lists, 95)
    rows = [
        row(BENCH, f"a user cluster of {pods:,} pods ({PODS:,} not host-network) on {NODES} nodes, from creation "
                   f"until every pod runs (time factor {TIME_FACTOR})", f"{start_seconds:.1f} s", "reported"),
        row(BENCH, f"full pod list ({pods:,} pods, one request) through the `kubernetes` client ({LISTS} lists)",
            f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms", "< 1 s", at_most(p95, 1.0, " s")),
        row(BENCH, "`kubectl get pods -A` of that cluster, wall time of the process (3 runs)",
            f"best {min(kubectl_lists):.2f} s, worst {max(kubectl_lists):.2f} s", "reported"),
    ]
    return {"rows": rows, "raw": {"start_seconds": start_seconds, "client_lists": client_lists,
                                  "kubectl_lists": kubectl_lists, "pods": pods}}
