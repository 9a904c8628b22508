"""3. Concurrent waits: 200 clusters waiting for Cilium at once in one stand-in triggerer process
(bench.waiter runs them as 200 coroutines on one loop, as one triggerer runs 200 triggers).

Measured in that process: CPU seconds and resident memory with nothing to wait for, with all
waits watching (idle), and through the rollout; and the detection latency of each cluster
(lab condition true -> event). KKP's rollouts are spread over ROLLOUT_SPREAD seconds, as
200 migrations started together would be by KKP's queue.
"""

from __future__ import annotations

import random
import time

from . import labkit, waiting
from .report import at_most, percentile, row

CLUSTERS = 200
TIME_FACTOR = 0.01
ROLLOUT_SPREAD = 15.0         # wall seconds over which the 200 switches are made
IDLE_SECONDS = 10.0
WARM = 20                     # memory per cluster is the growth from 20 to 200 waits (imports paid)
BENCH = "3 concurrent waits"


def run(results_dir: str) -> dict:
    lab, kkp = labkit.start(TIME_FACTOR, rollout_delay=30.0)
    waiter = waiting.Waiter()
    try:
        started = time.monotonic()
        users = [kkp.add_cluster(labkit.ClusterSpec(f"fleet-{i:03d}", "canal", "v3.31", "iptables", nodes=1))
                 for i in range(CLUSTERS)]
        labkit.settle(kkp, 300)
        setup_s = time.monotonic() - started
        base = waiter.usage()
        probes = {}
        for i, user in enumerate(users):
            if i == WARM:
                warm = waiter.usage()
            probes[user.id] = waiting.cilium_ready(lab, user.store)
            waiter.wait(user.id, user.api.kubeconfig(), "cilium_ready", timeout=300)
            if i == WARM - 1:
                waiter.expect(user.id, "watching")
        for user in users:
            waiter.expect(user.id, "watching")
        watching = waiter.usage()
        time.sleep(IDLE_SECONDS)
        idle = waiter.usage()
        rng = random.Random(7)
        order = rng.sample(users, len(users))
        t0 = time.monotonic()
        for i, user in enumerate(order):
            time.sleep(max(0.0, t0 + ROLLOUT_SPREAD * i / len(order) - time.monotonic()))
            labkit.switch_cluster(lab, user, cni=("cilium", "1.19.4"))
        latencies = []
        for user in users:
            done = waiter.expect(user.id, "done", timeout=300)
            if not done["done"]:
                raise RuntimeError(f"{user.id}: {done['detail']}")
            latencies.append(done["at"] - probes[user.id].wait())
        end = waiter.usage()
        rollout_s = time.monotonic() - t0
    finally:
        waiter.close()
        lab.stop()

    per_cluster_kb = (watching["rss_kb"] - warm["rss_kb"]) / (CLUSTERS - WARM)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    idle_cpu = (idle["cpu_s"] - watching["cpu_s"]) / IDLE_SECONDS
    rows = [
        row(BENCH, f"{CLUSTERS} cilium_ready waits in one process: condition true -> event",
            f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms, max {1000 * max(latencies):.0f} ms",
            "p95 < 2 s", at_most(p95, 2.0, " s")),
        row(BENCH, f"memory per waiting cluster (RSS growth from {WARM} to {CLUSTERS} waits)",
            f"{per_cluster_kb:.0f} KiB ({base['rss_kb'] / 1024:.0f} -> {watching['rss_kb'] / 1024:.0f} MiB)",
            "reported"),
        row(BENCH, "triggerer CPU: starting 200 waits / idle watching / through the rollout",
            f"{watching['cpu_s'] - base['cpu_s']:.1f} s / {100 * idle_cpu:.1f}% of a core / "
            f"{end['cpu_s'] - idle['cpu_s']:.1f} s over {rollout_s:.0f} s", "reported"),
    ]
    raw = {"setup_s": setup_s, "usage": {"base": base, "warm": warm, "watching": watching, "idle": idle, "end": end},
           "latencies": latencies, "rollout_s": rollout_s}
    return {"rows": rows, "raw": raw}
