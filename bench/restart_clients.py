"""The two restart clients of the pod-restart benchmark, each run in a process of its own
(as an Airflow worker is, apart from the API server), printing one JSON line:

    python -m bench.restart_clients dag KUBECONFIG       # the DAG's step-3 task body
    python -m bench.restart_clients limit KUBECONFIG N   # a tight loop of N concurrent evictions
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import sys
import time

import yaml


def dag_restart(kubeconfig: dict) -> dict:
    """What the step_3_restart_pods.restart task runs, with the DAG's default tuning."""
    from kkp_migration import steps
    from kkp_migration.kube import Kube
    from kkp_migration.usercluster import UserCluster

    with Kube(kubeconfig, "user cluster bench") as kube:
        started = time.monotonic()
        out = steps.restart_pods(UserCluster(kube, "bench"), "cilium", include_without_controller=False,
                                 parallelism=32, pdb_wait_seconds=600)
        return {"seconds": time.monotonic() - started, "planned": out["planned"], "evicted": out["evicted"],
                "gone": out["gone"]}


async def eviction_loop(kubeconfig: dict, concurrency: int) -> dict:
    """Every network pod evicted at once, `concurrency` requests in flight: the rate the lab answers."""
    import aiohttp

    cluster, user = kubeconfig["clusters"][0]["cluster"], kubeconfig["users"][0]["user"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    headers = {"Authorization": f"Bearer {user['token']}", "Accept": "application/json"}
    server = cluster["server"]
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=ctx, limit=concurrency)) \
            as session:
        async with session.get(f"{server}/api/v1/pods") as resp:
            pods = [p["metadata"] for p in (await resp.json())["items"] if not p["spec"].get("hostNetwork")]
        codes: dict[str, int] = {}
        queue = list(pods)

        async def worker():
            while queue:
                meta = queue.pop()
                ns, name = meta["namespace"], meta["name"]
                body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
                async with session.post(f"{server}/api/v1/namespaces/{ns}/pods/{name}/eviction", json=body) as r:
                    await r.read()
                    codes[str(r.status)] = codes.get(str(r.status), 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.monotonic() - started
    return {"seconds": seconds, "requests": len(pods), "codes": codes, "concurrency": concurrency}


def main(argv: list[str]) -> None:
    kubeconfig = yaml.safe_load(open(argv[1]))
    if argv[0] == "dag":
        result = dag_restart(kubeconfig)
    else:
        result = asyncio.run(eviction_loop(kubeconfig, int(argv[2])))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
