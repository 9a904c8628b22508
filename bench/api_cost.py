"""4. API cost: the requests the DAG sends to the user cluster during a full Canal -> Cilium
migration (machine deployments rolled) of a 1,000-pod and a 5,000-pod cluster, by verb.

Only the DAG talks to the user cluster's API in these runs (the lab's controllers write to its
store directly), so the lab's per-cluster counter is the DAG's cost. Everything except the
per-pod evictions should stay flat as pods grow; paginated lists (500 per page) add one
request per 500 objects, which the "flat" check allows.
"""

from __future__ import annotations

from collections import Counter

from . import airflow_home, labkit, migration
from .report import row

SIZES = ((1000, 20), (5000, 100))
PAGE = 500
BENCH = "4 API cost"
EVICTION = ("create", "pods/eviction")


def measure(pods: int, nodes: int, results_dir: str) -> Counter:
    lab, kkp = labkit.start(0.0)
    try:
        user = labkit.add_cluster(kkp, f"cost-{pods}", pods=pods, nodes=nodes)
        airflow_home.lab_connections(lab, kkp, results_dir)
        lab.call(user.api.requests.clear)
        migration.migrate(lab, user, machines=True)
        return lab.call(lambda: Counter(user.api.requests))
    finally:
        lab.stop()


def by_verb(counts: Counter) -> Counter:
    out: Counter = Counter()
    for (verb, resource), n in counts.items():
        out["eviction" if (verb, resource) == EVICTION else verb] += n
    return out


def run(results_dir: str) -> dict:
    counts = {pods: measure(pods, nodes, results_dir) for pods, nodes in SIZES}
    (small, _), (big, _) = SIZES
    verbs = {p: by_verb(c) for p, c in counts.items()}
    rows = []
    for verb in sorted(set(verbs[small]) | set(verbs[big])):
        rows.append(row(BENCH, f"{verb} requests, {small:,} -> {big:,} pods", f"{verbs[small][verb]} -> {verbs[big][verb]}"))
    others = {p: sum(n for v, n in verbs[p].items() if v != "eviction") for p in verbs}
    pages = sum(counts[big][k] for k in counts[big] if k[0] == "list") - \
        sum(counts[small][k] for k in counts[small] if k[0] == "list")
    allowed = others[small] + max(0, (big - small) // PAGE * _full_pod_lists(counts[small], small))
    grew = [f"{v} {r} {counts[small][(v, r)]} -> {n}" for (v, r), n in sorted(counts[big].items())
            if v != "list" and (v, r) != EVICTION and n > counts[small][(v, r)] + 3]
    rows.append(row(BENCH, "all but evictions (extra list pages allowed)", f"{others[small]} -> {others[big]} "
                    f"(lists {'+' if pages >= 0 else ''}{pages})", f"<= {allowed}",
                    "met" if others[big] <= allowed else
                    f"MISSED: {others[big]} is {others[big] - allowed} over; grew: {', '.join(grew)}"))
    per_pod = {p: verbs[p]["eviction"] / p for p in verbs}
    rows.append(row(BENCH, "evictions per pod (429 retries under PDBs included)",
                    f"{per_pod[small]:.2f} -> {per_pod[big]:.2f}", "reported"))
    raw = {str(p): {f"{v} {r}": n for (v, r), n in sorted(c.items())} for p, c in counts.items()}
    return {"rows": rows, "raw": raw}


def _full_pod_lists(counts: Counter, pods: int) -> int:
    """How many times the small run listed every pod or CiliumEndpoint (one such list is pods/PAGE
    pages), i.e. how many lists gain pages as pods grow."""
    pages = max(1, -(-pods // PAGE))
    return sum(max(1, round(counts[("list", r)] / pages)) for r in ("pods", "ciliumendpoints") if counts[("list", r)])
