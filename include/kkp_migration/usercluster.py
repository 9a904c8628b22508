"""What the runbook's steps do inside a user cluster, over its admin kubeconfig.

Readiness reads, the pod inventory behind step 3, the careful pod restart (evictions that
honour PodDisruptionBudgets, pods without a controller left alone unless included), CNI
object removal, the kube-proxy rollout and machine-deployment reads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from . import conditions
from .errors import MigrationError
from .kube import Kube, KubeApiError, NotFound, path_for

log = logging.getLogger(__name__)
KUBE_SYSTEM = "kube-system"
MD_PATH = "/apis/cluster.k8s.io/v1alpha1/namespaces/kube-system/machinedeployments"
CEP_PATH = "/apis/cilium.io/v2/ciliumendpoints"


def controller_of(pod: dict) -> dict | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def pod_key(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


@dataclass
class RestartPlan:
    """Which pods a restart will evict, and which it leaves alone and why."""

    target_cni: str
    to_restart: list[str] = field(default_factory=list)         # ns/name, pods with a controller
    without_controller: list[str] = field(default_factory=list)  # ns/name, restarted only if included
    already_managed: int = 0
    host_network: int = 0
    finished: int = 0
    uids: dict[str, str] = field(default_factory=dict)          # ns/name -> uid, so a successor is spared
    unready: list[str] = field(default_factory=list)             # ns/name of planned pods not Ready now
    owners: dict[str, str] = field(default_factory=dict)        # ns/name -> its controller's uid

    def as_dict(self) -> dict:
        return {"target_cni": self.target_cni, "to_restart": self.to_restart,
                "without_controller": self.without_controller, "already_managed": self.already_managed,
                "host_network": self.host_network, "finished": self.finished, "uids": self.uids,
                "unready": self.unready, "owners": self.owners}


@dataclass
class RestartResult:
    evicted: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)     # pods without a controller, re-created
    gone: list[str] = field(default_factory=list)          # disappeared before we reached them
    blocked: dict[str, str] = field(default_factory=dict)  # ns/name -> what blocked it (PDB message)
    failed: dict[str, str] = field(default_factory=dict)
    retryable: bool = True      # False once a failure is one a retry cannot fix (403, a missing API)

    def as_dict(self) -> dict:
        return {"evicted": len(self.evicted), "recreated": self.recreated, "gone": len(self.gone),
                "blocked": self.blocked, "failed": self.failed}


class UserCluster:
    def __init__(self, kube: Kube, cluster_id: str):
        self.kube = kube
        self.cluster_id = cluster_id
        self._plurals: dict[tuple[str, str], str] = {}

    # ---- reads --------------------------------------------------------------------------------

    def get(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        return self.kube.get_or_none(path_for(api_version, plural, name, namespace))

    def pods(self) -> list[dict]:
        return self.kube.list_all("/api/v1/pods")

    def pods_without_controller(self) -> list[dict]:
        """Running pods nothing would re-create (host-network ones included: a drain deletes them too)."""
        return [p for p in self.pods() if not controller_of(p) and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def create_pod(self, manifest: dict) -> None:
        ns = manifest["metadata"]["namespace"]
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body=manifest)
        except KubeApiError as exc:
            if exc.code != 409:        # created meanwhile (a retry of this step): nothing to do
                raise

    def nodes(self) -> list[dict]:
        return self.kube.list_all("/api/v1/nodes")

    def cilium_endpoints(self) -> set[tuple[str, str]]:
        try:
            return {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in self.kube.list(CEP_PATH)}
        except NotFound:
            return set()

    def cilium_state(self) -> conditions.Progress:
        return conditions.cilium_ready(self.get("apps/v1", "daemonsets", "cilium", KUBE_SYSTEM),
                                       self.get("apps/v1", "deployments", "cilium-operator", KUBE_SYSTEM))

    def kube_proxy_configmap(self) -> dict | None:
        return self.get("v1", "configmaps", "kube-proxy", KUBE_SYSTEM)

    def machine_deployments(self) -> list[dict]:
        try:
            return self.kube.list_all(MD_PATH)
        except NotFound:
            return []

    def pods_managed(self, cni: str) -> conditions.Progress:
        return conditions.pods_managed(self.pods(), cni, self.cilium_endpoints())

    # ---- step 3: restart non-host-network pods ---------------------------------------------------

    def restart_plan(self, target_cni: str) -> RestartPlan:
        """The runbook's `grep '<none>'` pipeline, made careful: what would be restarted and why not."""
        endpoints = self.cilium_endpoints()
        plan = RestartPlan(target_cni)
        for pod in self.pods():
            spec, phase = pod.get("spec") or {}, (pod.get("status") or {}).get("phase")
            if spec.get("hostNetwork"):
                plan.host_network += 1
            elif phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
                plan.finished += 1
            elif spec.get("nodeName") and conditions.managed_by(pod, target_cni, endpoints):
                plan.already_managed += 1
            else:
                key = pod_key(pod)
                owner = controller_of(pod)
                (plan.to_restart if owner else plan.without_controller).append(key)
                if owner:
                    plan.owners[key] = owner["uid"]
                plan.uids[key] = pod["metadata"]["uid"]
                if not conditions.pod_ready(pod):
                    plan.unready.append(key)
        plan.to_restart.sort()
        plan.without_controller.sort()
        return plan

    def restart_pods(self, plan: RestartPlan, *, include_without_controller: bool = False,
                     parallelism: int = 32, pdb_wait_seconds: float = 300.0, progress=None) -> RestartResult:
        """Evict every planned pod through the Eviction API, in parallel; re-create included pods
        without a controller from their own manifest. Pods a PDB keeps are retried until
        `pdb_wait_seconds` have passed, then reported as blocked."""
        from .restart import Restarter
        return Restarter(self, parallelism=parallelism, pdb_wait_seconds=pdb_wait_seconds,
                         progress=progress).run(plan, include_without_controller)

    # ---- removing a CNI's objects ------------------------------------------------------------------

    def plural_for(self, api_version: str, kind: str) -> str:
        """Resource name of a kind, from discovery (what `kubectl delete -f` does)."""
        key = (api_version, kind)
        if key not in self._plurals:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                for res in self.kube.get(path).get("resources") or []:
                    if "/" not in res["name"]:
                        self._plurals[(api_version, res["kind"])] = res["name"]
            except NotFound:
                pass
        if key not in self._plurals:
            raise NotFound(f"user cluster {self.cluster_id} does not serve {kind} in {api_version}", 404)
        return self._plurals[key]

    def existing(self, objects: list[dict]) -> list[dict]:
        """Which of `objects` (apiVersion, kind, name, namespace) exist now; a name ending in `*`
        (a Helm hook's generated name) stands for every object it prefixes."""
        out = []
        for obj in objects:
            try:
                plural = self.plural_for(obj["apiVersion"], obj["kind"])
            except NotFound:
                continue
            if obj["name"].endswith("*"):
                prefix = obj["name"][:-1]
                out += [{**obj, "name": o["metadata"]["name"]} for o in
                        self.kube.list(path_for(obj["apiVersion"], plural, None, obj.get("namespace")))
                        if o["metadata"]["name"].startswith(prefix)]
            elif self.get(obj["apiVersion"], plural, obj["name"], obj.get("namespace")) is not None:
                out.append(obj)
        return out

    def delete_objects(self, objects: list[dict]) -> tuple[list[str], list[str]]:
        """Delete each object; returns (deleted, already gone). Order: workloads first, CRDs last."""
        deleted, gone = [], []
        for obj in sorted(objects, key=lambda o: o["kind"] == "CustomResourceDefinition"):
            label = f"{obj['kind']} {obj.get('namespace') + '/' if obj.get('namespace') else ''}{obj['name']}"
            try:
                plural = self.plural_for(obj["apiVersion"], obj["kind"])
            except NotFound:
                gone.append(label)
                continue
            path = path_for(obj["apiVersion"], plural, obj["name"], obj.get("namespace"))
            (deleted if self.kube.delete(path, propagation="Background") else gone).append(label)
        return deleted, gone

    def wait_gone(self, objects: list[dict], timeout: float, every: float = 0.5) -> None:
        """Wait until none of `objects` exists (finalizers, such as an uninstall, have run)."""
        deadline = time.monotonic() + timeout
        while (left := self.existing(objects)):
            if time.monotonic() > deadline:
                names = ", ".join(f"{o['kind']} {o['name']}" for o in left)
                raise MigrationError(f"User cluster {self.cluster_id}: {names} still there after {timeout:.0f}s; "
                                     "check its finalizers (KKP's application controller), then clear this task.")
            time.sleep(every)

    def custom_objects_of(self, crd_name: str) -> int:
        """How many objects a CRD still holds (deleting the CRD deletes them all)."""
        crd = self.get("apiextensions.k8s.io/v1", "customresourcedefinitions", crd_name)
        if crd is None:
            return 0
        spec = crd["spec"]
        version = next((v["name"] for v in spec.get("versions") or [] if v.get("served", True)), None)
        if version is None:
            return 0
        try:
            return sum(1 for _ in self.kube.list(f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"))
        except NotFound:
            return 0

    # ---- kube-proxy --------------------------------------------------------------------------------

    def rollout_restart_daemonset(self, name: str, namespace: str = KUBE_SYSTEM, stamp: str | None = None) -> str:
        """`kubectl rollout restart daemonset`: a new restartedAt annotation on the pod template."""
        stamp = stamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            self.kube.request("PATCH", path_for("apps/v1", "daemonsets", name, namespace),
                              body={"spec": {"template": {"metadata": {"annotations": {
                                  "kubectl.kubernetes.io/restartedAt": stamp}}}}},
                              content_type="application/strategic-merge-patch+json")
        except KubeApiError as exc:
            if isinstance(exc, NotFound):
                raise NotFound(f"DaemonSet {namespace}/{name} does not exist in user cluster {self.cluster_id}",
                               404) from None
            raise
        return stamp
