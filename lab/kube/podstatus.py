"""The pod statuses a kubelet reports at each step of a pod's life, shaped like the real ones."""

from __future__ import annotations

import secrets

KINDS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def _cond(type_: str, ok: bool, now: str, reason: str = "", message: str = "") -> dict:
    c = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _containers(pod: dict) -> list[dict]:
    return (pod.get("spec") or {}).get("containers") or []


def _ips(host_ip: str, pod_ip: str | None) -> dict:
    out = {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}]}
    if pod_ip:
        out.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    return out


def _container(c: dict, ready: bool, state: dict, restarts: int = 0, last: dict | None = None) -> dict:
    out = {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": ready,
           "restartCount": restarts, "started": "running" in state, "state": state, "lastState": last or {}}
    if "waiting" not in state:
        out["containerID"] = "containerd://" + secrets.token_hex(32)
    return out


def _unready_conditions(pod: dict, now: str, sandbox: bool, reason: str = "ContainersNotReady",
                        message: str | None = None) -> list[dict]:
    if message is None:
        names = " ".join(c.get("name", "") for c in _containers(pod))
        message = f"containers with unready status: [{names}]"
    return [_cond("PodReadyToStartContainers", sandbox, now), _cond("Initialized", True, now),
            _cond("Ready", False, now, reason, message), _cond("ContainersReady", False, now, reason, message),
            _cond("PodScheduled", True, now)]


def creating(pod: dict, host_ip: str, now: str) -> dict:
    """Accepted by the kubelet; the sandbox (and its network) is not there yet."""
    return {"phase": "Pending", "conditions": _unready_conditions(pod, now, sandbox=False), **_ips(host_ip, None),
            "startTime": now, "qosClass": "BestEffort",
            "containerStatuses": [_container(c, False, {"waiting": {"reason": "ContainerCreating"}})
                                  for c in _containers(pod)]}


def running(pod: dict, host_ip: str, pod_ip: str, now: str, start_time: str, ready: bool = True) -> dict:
    """Containers running; `ready` False models readiness probes that never pass."""
    conds = ([_cond(k, True, now) for k in KINDS] if ready
             else _unready_conditions(pod, now, sandbox=True))
    return {"phase": "Running", "conditions": conds, **_ips(host_ip, pod_ip), "startTime": start_time,
            "qosClass": "BestEffort",
            "containerStatuses": [_container(c, ready, {"running": {"startedAt": now}}) for c in _containers(pod)]}


def crashlooping(pod: dict, host_ip: str, pod_ip: str, now: str, start_time: str, restarts: int,
                 backoff: float) -> dict:
    """Containers that exit with an error and are restarted with a growing back-off."""
    name = pod["metadata"]["name"]
    last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": start_time, "finishedAt": now}}
    return {"phase": "Running", "conditions": _unready_conditions(pod, now, sandbox=True), **_ips(host_ip, pod_ip),
            "startTime": start_time, "qosClass": "BestEffort",
            "containerStatuses": [_container(c, False, {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {int(backoff)}s restarting failed container={c.get('name', '')} pod={name}"}},
                restarts, last) for c in _containers(pod)]}


def succeeded(pod: dict, status: dict, now: str) -> dict:
    """Every container exited 0 (a Job pod's end)."""
    started = status.get("startTime", now)
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}}
    return {**status, "phase": "Succeeded",
            "conditions": _unready_conditions(pod, now, sandbox=False, reason="PodCompleted", message=""),
            "containerStatuses": [_container(c, False, done) for c in _containers(pod)]}


def network_lost(status: dict, cni: str, node: str, now: str) -> dict:
    """The pod's interface went with the CNI agent that made it: it can no longer pass readiness."""
    message = (f"pod network unavailable: the {cni} CNI agent that wired this pod is gone from node {node}; "
               "recreate the pod")
    conds = []
    for c in status.get("conditions") or ():
        if c.get("type") in ("Ready", "ContainersReady"):
            c = _cond(c["type"], False, now, "NetworkUnavailable", message)
        conds.append(c)
    return {**status, "conditions": conds,
            "containerStatuses": [{**cs, "ready": False} for cs in status.get("containerStatuses") or ()]}
