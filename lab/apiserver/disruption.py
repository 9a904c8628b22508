"""PodDisruptionBudget arithmetic, shared by the eviction subresource and the disruption controller."""

from __future__ import annotations

import math

from .errors import ApiError
from .selectors import selector_from_label_selector


def pod_ready(pod: dict) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _scaled(value, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


def budget_status(pdb: dict, pods: list[dict]) -> dict:
    """The PDB's status as the disruption controller computes it from the pods it selects."""
    spec = pdb.get("spec") or {}
    pred = selector_from_label_selector(spec.get("selector"))
    selected = [p for p in pods if pred(p["metadata"].get("labels") or {})]
    expected = len(selected)
    healthy = sum(1 for p in selected if pod_ready(p))
    if spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = expected
    return {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "expectedPods": expected,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": max(0, healthy - desired),
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": "True" if healthy - desired > 0 else "False",
            "reason": "SufficientPods" if healthy - desired > 0 else "InsufficientPods",
            "message": "", "observedGeneration": pdb["metadata"].get("generation", 1),
        }],
    }


def check_eviction(pod: dict, pdbs: list[dict], namespace_pods: list[dict]) -> None:
    """Raise 429 when evicting `pod` would take a budget below its desired healthy count."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
        return
    labels = pod["metadata"].get("labels") or {}
    matching = [b for b in pdbs if selector_from_label_selector((b.get("spec") or {}).get("selector"))(labels)]
    if not matching:
        return
    if len(matching) > 1:
        raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                            "does not support.")
    pdb = matching[0]
    status = budget_status(pdb, namespace_pods)
    ready = pod_ready(pod)
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    if not ready and (policy == "AlwaysAllow" or status["currentHealthy"] >= status["desiredHealthy"]):
        return
    if ready and status["disruptionsAllowed"] >= 1:
        return
    name = pdb["metadata"]["name"]
    raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests", {
        "causes": [{"reason": "DisruptionBudget",
                    "message": f"The disruption budget {name} needs {status['desiredHealthy']} healthy pods "
                               f"and has {status['currentHealthy']} currently"}]})
