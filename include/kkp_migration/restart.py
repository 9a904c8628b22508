"""The careful version of the runbook's step-3 pipeline.

Evictions instead of deletes (PodDisruptionBudgets hold), many at once (the outage lasts as
long as the restart), the exact pod that was planned (a uid precondition spares a successor
that already runs on the new CNI), and pods without a controller re-created from their own
manifest instead of being lost.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .conditions import pod_ready
from .errors import NeedsAttention
from .kube import KubeApiError, NotFound, TransientKubeError
from .retry import retry_transient

log = logging.getLogger(__name__)
_RUNTIME_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "ownerReferences",
                 "deletionTimestamp", "deletionGracePeriodSeconds")


def _split(key: str) -> tuple[str, str]:
    ns, name = key.split("/", 1)
    return ns, name


def fresh_manifest(pod: dict) -> dict:
    """A pod's manifest without what the API server and the old CNI wrote into it."""
    new = copy.deepcopy(pod)
    new.pop("status", None)
    meta = new["metadata"]
    for k in _RUNTIME_META:
        meta.pop(k, None)
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if not k.startswith("cni.projectcalico.org/")}
    new["spec"].pop("nodeName", None)
    return new


def interleaved(keys: list[str], owners: dict[str, str]) -> list[str]:
    """The pods in an order that takes one from each workload in turn (popped from the end), so
    consecutive evictions draw on different disruption budgets instead of exhausting one."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(owners.get(key, key), []).append(key)
    rounds = itertools.zip_longest(*groups.values())
    return [key for batch in rounds for key in batch if key is not None][::-1]


class Restarter:
    def __init__(self, cluster, *, parallelism: int, pdb_wait_seconds: float, progress=None,
                 retry_every: float = 0.25):
        self.cluster = cluster
        self.kube = cluster.kube
        self.parallelism = max(1, parallelism)
        self.pdb_wait_seconds = pdb_wait_seconds
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.retry_every = retry_every       # how soon a pod a budget refused is tried again
        self.unready: set[str] = set()

    def _evict(self, key: str, uid: str | None) -> str:
        ns, name = _split(key)
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
        if uid:
            body["deleteOptions"] = {"preconditions": {"uid": uid}}
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", body=body, retry=False)
            return "evicted"
        except NotFound:
            return "gone"
        except KubeApiError as exc:
            if exc.code == 409:          # uid precondition: the planned pod is already replaced
                return "gone"
            raise
        except TransientKubeError as exc:
            if exc.code == 429 and "disruption budget" in exc.status_message:
                unready = key in self.unready and self._delete_if_unready(key, uid)
                return unready or "blocked:" + exc.status_message
            raise

    def _delete_if_unready(self, key: str, uid: str | None) -> str | None:
        """A budget refuses evictions while too few of its pods are Ready, which is the case when
        the pods lost their network (after the old CNI was removed). A pod that is not Ready counts
        for nothing in its budget, so deleting it cannot break the budget: Kubernetes' own
        `unhealthyPodEvictionPolicy: AlwaysAllow` rule."""
        ns, name = _split(key)
        pod = self.kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/{name}")
        if pod is None or (uid and pod["metadata"]["uid"] != uid):
            return "gone"
        if pod_ready(pod):
            return None
        try:
            self.kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", retry=False,
                              body={"kind": "DeleteOptions", "apiVersion": "v1",
                                    "preconditions": {"uid": pod["metadata"]["uid"]}})
        except NotFound:
            return "gone"
        except KubeApiError as exc:
            if exc.code == 409:
                return "gone"
            raise
        return "evicted"

    def run(self, plan, include_without_controller: bool):
        from .usercluster import RestartResult
        result = RestartResult()
        self.unready = set(plan.unready)     # only these are worth a look when a budget refuses them
        todo = interleaved(plan.to_restart, plan.owners)
        total = len(todo)
        deadline = time.monotonic() + self.pdb_wait_seconds
        waiting: dict[str, tuple[float, str]] = {}     # key -> (next try, last PDB message)
        last_report = 0.0
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="evict") as pool:
            running: dict[Future, str] = {}
            while todo or running or waiting:
                now = time.monotonic()
                for key, (at, _) in list(waiting.items()):
                    if now >= at:
                        del waiting[key]
                        todo.append(key)
                while todo and len(running) < self.parallelism * 2:
                    key = todo.pop()
                    running[pool.submit(self._evict_with_retry, key, plan.uids.get(key))] = key
                if not running:
                    if now > deadline:
                        for key, (_, msg) in waiting.items():
                            result.blocked[key] = msg
                        break
                    time.sleep(min(self.retry_every, max(0.0, min(at for at, _ in waiting.values()) - now)))
                    continue
                done, _ = wait(list(running), timeout=self.retry_every, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # one pod's failure must not stop the others
                        result.failed[key] = str(exc).rstrip(".")
                        result.retryable &= not isinstance(exc, NeedsAttention)
                        continue
                    if outcome == "evicted":
                        result.evicted.append(key)
                    elif outcome == "gone":
                        result.gone.append(key)
                    elif time.monotonic() > deadline:
                        result.blocked[key] = outcome.split(":", 1)[1]
                    else:
                        waiting[key] = (time.monotonic() + self.retry_every, outcome.split(":", 1)[1])
                if time.monotonic() - last_report > 5 or not (todo or running or waiting):
                    last_report = time.monotonic()
                    self.progress(f"restart: {len(result.evicted)}/{total} evicted, {len(waiting)} held by "
                                  f"disruption budgets, {len(result.failed)} failed")
        if include_without_controller:
            for key in plan.without_controller:
                self._recreate(key, plan.uids.get(key), result)
        return result

    def _evict_with_retry(self, key: str, uid: str | None) -> str:
        return retry_transient(lambda: self._evict(key, uid), what=f"evicting pod {key}")

    def _recreate(self, key: str, uid: str | None, result) -> None:
        """Delete a pod that nothing would re-create, then create it again from its manifest."""
        ns, name = _split(key)
        path = f"/api/v1/namespaces/{ns}/pods/{name}"
        pod = self.kube.get_or_none(path)
        if pod is None or (uid and pod["metadata"]["uid"] != uid):
            result.gone.append(key)
            return
        manifest = fresh_manifest(pod)
        log.info("re-creating pod %s without a controller; its manifest, should anything fail: %s", key, manifest)
        self.kube.request("DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                "preconditions": {"uid": pod["metadata"]["uid"]}})
        grace = int(pod["spec"].get("terminationGracePeriodSeconds") or 30)
        deadline = time.monotonic() + grace + 60
        while self.kube.get_or_none(path) is not None:
            if time.monotonic() > deadline:
                result.failed[key] = f"pod {key} did not terminate within {grace + 60}s; it was not re-created"
                return
            time.sleep(0.2)
        self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body=manifest)
        result.recreated.append(key)
