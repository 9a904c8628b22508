"""What a test asserts on: the lab's own view of a user cluster, read straight from its store."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CniState:
    cluster_cni: str
    cluster_cni_version: str
    proxy_mode: str
    cilium_ready: bool
    canal_ready: bool
    pod_names: list[str] = field(default_factory=list)
    bare_pods: list[str] = field(default_factory=list)         # no controller, not host-network
    unmanaged_pods: list[str] = field(default_factory=list)    # wired pods without a CiliumEndpoint
    canal_objects: list[str] = field(default_factory=list)     # Canal objects still present (shared CRDs aside)
    pdb_violations: list[str] = field(default_factory=list)
    proxy_configmap_mode: str | None = None
    census: dict = field(default_factory=dict)                 # (ns, owner kind, owner name) -> pods
    not_on_canal: list[str] = field(default_factory=list)      # wired pods without Calico's annotation

    def workloads(self) -> dict:
        """The census outside kube-system, Jobs aside (they finish): the users' workloads, which a
        migration must keep."""
        return {k: v for k, v in self.census.items() if k[0] != "kube-system" and k[1] != "Job"}


def _census(pods: list[dict]) -> dict:
    """Pods per owner (bare pods by name): what "every pod is still there" means across restarts,
    which give controller pods new names."""
    out: dict = {}
    for p in pods:
        if p["metadata"].get("deletionTimestamp") or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ref = next((r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        key = (p["metadata"]["namespace"], ref["kind"], ref["name"]) if ref else \
            (p["metadata"]["namespace"], "Pod", p["metadata"]["name"])
        out[key] = out.get(key, 0) + 1
    return out


def _ds_ready(store, name: str) -> bool:
    ds = store.try_get(store.rtype("apps", "daemonsets"), "kube-system", name)
    st = (ds or {}).get("status") or {}
    return bool(ds) and st.get("desiredNumberScheduled", 0) > 0 and \
        st.get("numberReady") == st.get("desiredNumberScheduled") == st.get("updatedNumberScheduled")


def cni_state(lab, user, canal_version: str | None = None) -> CniState:
    """Snapshot taken on the lab's loop, so it is consistent."""
    from lab.kkp import canal

    def snap():
        seed = lab.seed.store
        cluster = seed.get(seed.rtype("kubermatic.k8c.io", "clusters"), None, user.id)
        store = user.api.store
        pods = store.items(store.rtype("", "pods"))
        cep_rt = store.types.get(("cilium.io", "ciliumendpoints"))
        ceps = {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in store.items(cep_rt)} if cep_rt else set()
        names = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)
        bare = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods
                      if not p["metadata"].get("ownerReferences") and not p["spec"].get("hostNetwork"))
        unmanaged = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods
                           if not p["spec"].get("hostNetwork") and p["spec"].get("nodeName")
                           and not p["metadata"].get("deletionTimestamp")
                           and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
                           and (p["metadata"]["namespace"], p["metadata"]["name"]) not in ceps)
        on_canal = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods
                          if not p["spec"].get("hostNetwork") and p["spec"].get("nodeName")
                          and not p["metadata"].get("deletionTimestamp")
                          and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
                          and "cni.projectcalico.org/podIP" not in (p["metadata"].get("annotations") or {}))
        leftovers = []
        for ref in canal.object_refs(canal_version or user.spec.cni_version or "v3.31"):
            if ref["name"].endswith("policy.networking.k8s.io"):
                continue
            rt = next((t for t in store.types.values() if t.kind == ref["kind"] and t.api_version ==
                       ref["apiVersion"]), None)
            if rt and store.try_get(rt, ref.get("namespace"), ref["name"]) is not None:
                leftovers.append(f"{ref['kind']} {ref['name']}")
        cm = store.try_get(store.rtype("", "configmaps"), "kube-system", "kube-proxy")
        mode = None
        if cm:
            import yaml
            mode = (yaml.safe_load(cm["data"].get("config.conf", "")) or {}).get("mode")
        spec = cluster["spec"]
        return CniState(spec["cniPlugin"]["type"], spec["cniPlugin"]["version"],
                        spec["clusterNetwork"]["proxyMode"], _ds_ready(store, "cilium"), _ds_ready(store, "canal"),
                        names, bare, unmanaged, leftovers, list(user.api.pdb_violations), mode, _census(pods),
                        on_canal)

    return lab.call(snap)


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def client_writes(lab, kkp) -> int:
    """Write requests clients sent to the lab (seed, user clusters, KKP API); controllers' own
    writes go straight to the stores and are not counted."""
    def count():
        total = sum(n for c in lab.clusters.values() for (verb, _), n in c.requests.items() if verb in WRITE_VERBS)
        return total + sum(n for (method, _), n in kkp.requests.items() if method in ("POST", "PUT", "PATCH",
                                                                                     "DELETE"))
    return lab.call(count)
