"""What "ready", "rolled out" and "managed by a CNI" mean, as pure functions over API objects.

The deferrable triggers (watching) and the steps and verification (listing) judge the same
objects the same way through these functions; each returns a `Progress` whose `detail` says
what is still missing, so a timeout can say it.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

CALICO_POD_IP = "cni.projectcalico.org/podIP"


@dataclass(frozen=True)
class Progress:
    done: bool
    detail: str

    def __bool__(self) -> bool:
        return self.done


def _n(status: dict, key: str) -> int:
    return int(status.get(key) or 0)


def daemonset_rolled(ds: dict | None, label: str) -> Progress:
    """Every scheduled pod of the DaemonSet is updated, ready and available."""
    if ds is None:
        return Progress(False, f"DaemonSet {label} does not exist yet")
    st, meta = ds.get("status") or {}, ds["metadata"]
    desired = _n(st, "desiredNumberScheduled")
    if _n(st, "observedGeneration") < meta.get("generation", 1):
        return Progress(False, f"DaemonSet {label}: controller has not observed generation {meta.get('generation')}")
    if desired == 0:
        return Progress(False, f"DaemonSet {label}: no pod scheduled yet")
    counts = {k: _n(st, k) for k in ("updatedNumberScheduled", "numberReady", "numberAvailable")}
    if all(v == desired for v in counts.values()) and _n(st, "numberUnavailable") == 0:
        return Progress(True, f"DaemonSet {label}: {desired}/{desired} ready")
    return Progress(False, f"DaemonSet {label}: desired {desired}, updated {counts['updatedNumberScheduled']}, "
                           f"ready {counts['numberReady']}, available {counts['numberAvailable']}")


def deployment_available(dep: dict | None, label: str) -> Progress:
    if dep is None:
        return Progress(False, f"Deployment {label} does not exist yet")
    st, meta = dep.get("status") or {}, dep["metadata"]
    want = int((dep.get("spec") or {}).get("replicas", 1))
    if _n(st, "observedGeneration") < meta.get("generation", 1):
        return Progress(False, f"Deployment {label}: controller has not observed generation {meta.get('generation')}")
    if _n(st, "updatedReplicas") >= want and _n(st, "availableReplicas") >= want and want > 0:
        return Progress(True, f"Deployment {label}: {want}/{want} available")
    return Progress(False, f"Deployment {label}: {_n(st, 'availableReplicas')}/{want} available, "
                           f"{_n(st, 'updatedReplicas')} updated")


def all_of(*parts: Progress) -> Progress:
    missing = [p.detail for p in parts if not p.done]
    if missing:
        return Progress(False, "; ".join(missing))
    return Progress(True, "; ".join(p.detail for p in parts))


def cilium_ready(agent: dict | None, operator: dict | None) -> Progress:
    """The runbook's "all Cilium pods are deployed and running"."""
    return all_of(daemonset_rolled(agent, "kube-system/cilium"),
                  deployment_available(operator, "kube-system/cilium-operator"))


def canal_ready(agent: dict | None, controllers: dict | None) -> Progress:
    return all_of(daemonset_rolled(agent, "kube-system/canal"),
                  deployment_available(controllers, "kube-system/calico-kube-controllers"))


def pods_created_after(pods: list[dict], since: str, label: str) -> Progress:
    """Every pod was created at or after `since` (RFC 3339): a full redeploy happened."""
    old = [p["metadata"]["name"] for p in pods if p["metadata"].get("creationTimestamp", "") < since
           or p["metadata"].get("deletionTimestamp")]
    if not pods:
        return Progress(False, f"no {label} pod exists")
    if old:
        return Progress(False, f"{len(old)} of {len(pods)} {label} pods still predate the change "
                               f"({', '.join(sorted(old)[:5])})")
    return Progress(True, f"all {len(pods)} {label} pods redeployed")


def kube_proxy_mode(configmap: dict | None) -> str | None:
    """The `mode:` of the kube-proxy ConfigMap's KubeProxyConfiguration (None when absent)."""
    if configmap is None:
        return None
    raw = (configmap.get("data") or {}).get("config.conf")
    if not raw:
        return None
    try:
        conf = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    mode = conf.get("mode") if isinstance(conf, dict) else None
    return mode or "iptables"   # kube-proxy's default when mode is empty


def proxy_mode_is(configmap: dict | None, want: str) -> Progress:
    have = kube_proxy_mode(configmap)
    if have == want:
        return Progress(True, f"kube-proxy ConfigMap says mode {want}")
    return Progress(False, f"kube-proxy ConfigMap says mode {have or '(no ConfigMap)'}, waiting for {want}")


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def needs_network(pod: dict) -> bool:
    """A pod that a CNI wires: not host-network, not finished, not on its way out."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (not spec.get("hostNetwork") and status.get("phase") not in ("Succeeded", "Failed")
            and not pod["metadata"].get("deletionTimestamp"))


def managed_by(pod: dict, cni: str, endpoints: set[tuple[str, str]]) -> bool:
    """Cilium manages a pod when it has a CiliumEndpoint (what `cilium status` counts); Canal
    when Calico's CNI plugin annotated it and Cilium does not manage it."""
    key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
    if cni == "cilium":
        return key in endpoints
    return key not in endpoints and CALICO_POD_IP in (pod["metadata"].get("annotations") or {})


def pods_managed(pods: list[dict], cni: str, endpoints: set[tuple[str, str]],
                 exclude: frozenset[str] = frozenset()) -> Progress:
    """The runbook's `Cluster Pods: N/N managed by Cilium`, for either CNI; `exclude` holds the
    ns/name of pods the approver chose to leave alone."""
    pods = [p for p in pods if f"{p['metadata']['namespace']}/{p['metadata']['name']}" not in exclude]
    wired = [p for p in pods if needs_network(p) and p["spec"].get("nodeName")]
    pending = [p for p in pods if needs_network(p) and not p["spec"].get("nodeName")]
    missing = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in wired
               if not managed_by(p, cni, endpoints)]
    total = len(wired) + len(pending)
    managed = len(wired) - len(missing)
    head = f"Cluster Pods: {managed}/{total} managed by {cni.capitalize()}"
    if exclude:
        head += f" ({len(exclude)} left alone by choice)"
    if missing or pending or total == 0:
        extra = f"; not yet: {', '.join(sorted(missing)[:5])}" if missing else ""
        extra += f"; {len(pending)} pods not scheduled" if pending else ""
        return Progress(False, head + extra)
    return Progress(True, head)


def machine_deployment_rolled(md: dict, since_ns: int | None = None) -> Progress:
    """All machines of the deployment replaced (after the forceRestart at `since_ns`) and ready."""
    name = md["metadata"]["name"]
    st, spec = md.get("status") or {}, md.get("spec") or {}
    want = int(spec.get("replicas", 1))
    stamp = ((spec.get("template") or {}).get("metadata") or {}).get("annotations", {}).get("forceRestart")
    if since_ns is not None and (not stamp or int(stamp) < since_ns):
        return Progress(False, f"MachineDeployment {name}: restart not requested yet")
    if _n(st, "observedGeneration") < md["metadata"].get("generation", 1):
        return Progress(False, f"MachineDeployment {name}: controller has not observed the restart")
    ok = all(_n(st, k) == want for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"))
    if ok:
        return Progress(True, f"MachineDeployment {name}: {want}/{want} machines replaced and ready")
    return Progress(False, f"MachineDeployment {name}: {_n(st, 'updatedReplicas')}/{want} updated, "
                           f"{_n(st, 'readyReplicas')} ready, {_n(st, 'replicas')} total")
