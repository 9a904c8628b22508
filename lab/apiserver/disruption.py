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
    return budget_statuses([pdb], pods)[0]


def budget_statuses(pdbs: list[dict], pods: list[dict]) -> list[dict]:
    """The status of each of a namespace's PDBs. Pods are grouped by label set first, so each
    selector runs once per distinct set (a workload's pods share theirs), not once per pod."""
    by_labels: dict[frozenset, list[dict]] = {}
    for p in pods:
        by_labels.setdefault(frozenset((p["metadata"].get("labels") or {}).items()), []).append(p)
    out = []
    for pdb in pdbs:
        pred = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        selected = [p for labels, group in by_labels.items() if pred(dict(labels)) for p in group]
        out.append(_status(pdb, len(selected), sum(1 for p in selected if pod_ready(p))))
    return out


def _status(pdb: dict, expected: int, healthy: int) -> dict:
    spec = pdb.get("spec") or {}
    if spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = expected
    generation = pdb["metadata"].get("generation", 1)
    return {
        "observedGeneration": generation,
        "expectedPods": expected,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": max(0, healthy - desired),
        "conditions": [_allowed_condition(healthy - desired > 0, generation)],
    }


def _allowed_condition(allowed: bool, generation: int) -> dict:
    return {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
            "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
            "observedGeneration": generation}


def _refused(message: str) -> ApiError:
    return ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests",
                    {"causes": [{"reason": "DisruptionBudget", "message": message}]})


def check_eviction(pod: dict, pdbs: list[dict], now: str, namespace_pods) -> tuple[str, dict] | None:
    """The eviction subresource's rules, read from the budget's status as the real API server
    reads it: raise 429 when the budget has no disruption left, else return (budget name, its
    status with one disruption taken) for the caller to write once the pod is deleted, or None when
    there is nothing to write.

    The lab deletes an evicted pod in the same request, so the pod stops counting as healthy at
    once and the real server's `disruptedPods` bookkeeping is not needed. A budget the disruption
    controller has not processed (bare lab clusters run no controllers; a real server would answer
    429) is judged from its pods (`namespace_pods()`) on every eviction, and nothing is written."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
        return None
    labels = pod["metadata"].get("labels") or {}
    matching = [b for b in pdbs if selector_from_label_selector((b.get("spec") or {}).get("selector"))(labels)]
    if not matching:
        return None
    if len(matching) > 1:
        raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                            "does not support.")
    pdb = matching[0]
    name, generation = pdb["metadata"]["name"], pdb["metadata"].get("generation", 1)
    status = pdb.get("status") or {}
    processed = status.get("observedGeneration", 0) >= generation
    if not processed:
        status = budget_status(pdb, namespace_pods())
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    if not pod_ready(pod) and (policy == "AlwaysAllow" or
                               0 < status.get("desiredHealthy", 0) <= status.get("currentHealthy", 0)):
        return None
    if status.get("disruptionsAllowed", 0) < 1:
        raise _refused(f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
                       f"and has {status.get('currentHealthy', 0)} currently")
    if not processed:
        return None
    left = status["disruptionsAllowed"] - 1
    condition = _allowed_condition(left > 0, generation)
    before = next((c for c in status.get("conditions") or () if c.get("type") == condition["type"]), {})
    same = before.get("status") == condition["status"] and before.get("lastTransitionTime")
    return name, {**status, "disruptionsAllowed": left,
                  "conditions": [{**condition, "lastTransitionTime": before["lastTransitionTime"] if same else now}]}
