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
                        names, bare, unmanaged, leftovers, list(user.api.pdb_violations), mode)

    return lab.call(snap)
