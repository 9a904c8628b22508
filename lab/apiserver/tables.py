"""Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for."""

from __future__ import annotations

from datetime import datetime, timezone

from .resources import ResourceType


def human_duration(created: str | None) -> str:
    """Kubernetes' short age format: 45s, 5m12s, 3h, 2d5h, 400d."""
    if not created:
        return "<unknown>"
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    secs = int((datetime.now(timezone.utc) - then).total_seconds())
    if secs < 0:
        secs = 0
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _pod_status(pod: dict) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return waiting["reason"]
    return status.get("reason") or status.get("phase") or "Pending"


def _pod_cells(pod: dict) -> list:
    status = pod.get("status") or {}
    css = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in css)
    return [f"{ready}/{total}", _pod_status(pod), restarts, human_duration(pod["metadata"].get("creationTimestamp")),
            status.get("podIP") or "<none>", pod.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _node_cells(node: dict) -> list:
    conds = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
    state = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = ",".join(sorted(k.split("/", 1)[1] for k in (node["metadata"].get("labels") or {})
                            if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [state, roles, human_duration(node["metadata"].get("creationTimestamp")), info.get("kubeletVersion", ""),
            info.get("kernelVersion", "")]


def _deploy_cells(d: dict) -> list:
    s, spec = d.get("status") or {}, d.get("spec") or {}
    return [f"{s.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", s.get("updatedReplicas", 0),
            s.get("availableReplicas", 0), human_duration(d["metadata"].get("creationTimestamp"))]


def _ds_cells(d: dict) -> list:
    s = d.get("status") or {}
    sel = ((d.get("spec") or {}).get("template", {}).get("spec", {}) or {}).get("nodeSelector") or {}
    return [s.get("desiredNumberScheduled", 0), s.get("currentNumberScheduled", 0), s.get("numberReady", 0),
            s.get("updatedNumberScheduled", 0), s.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sel.items()) or "<none>",
            human_duration(d["metadata"].get("creationTimestamp"))]


def _cm_cells(cm: dict) -> list:
    return [len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            human_duration(cm["metadata"].get("creationTimestamp"))]


def _ns_cells(ns: dict) -> list:
    return [(ns.get("status") or {}).get("phase", ""), human_duration(ns["metadata"].get("creationTimestamp"))]


def _col(name, typ="string", priority=0, fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": "", "priority": priority}


_BUILTIN_TABLES = {
    ("", "pods"): ([_col("Ready"), _col("Status"), _col("Restarts", "string"), _col("Age"), _col("IP", priority=1),
                    _col("Node", priority=1), _col("Nominated Node", priority=1),
                    _col("Readiness Gates", priority=1)], _pod_cells),
    ("", "nodes"): ([_col("Status"), _col("Roles"), _col("Age"), _col("Version"),
                     _col("Kernel-Version", priority=1)], _node_cells),
    ("apps", "deployments"): ([_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"),
                               _col("Age")], _deploy_cells),
    ("apps", "daemonsets"): ([_col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                              _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"),
                              _col("Age")], _ds_cells),
    ("", "configmaps"): ([_col("Data", "integer"), _col("Age")], _cm_cells),
    ("", "namespaces"): ([_col("Status"), _col("Age")], _ns_cells),
}


def _json_path(obj, path: str):
    cur = obj
    for part in path.strip().lstrip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _printer_columns(rt: ResourceType):
    cols = [_col(c["name"], c.get("type", "string"), c.get("priority", 0)) for c in rt.printer_columns]
    has_age = any(c["name"].lower() == "age" for c in rt.printer_columns)

    def cells(obj):
        out = []
        for c in rt.printer_columns:
            value = _json_path(obj, c["jsonPath"])
            if c["name"].lower() == "age" or c.get("type") == "date":
                value = human_duration(value) if value else "<unknown>"
            out.append("<none>" if value is None else value)
        if not has_age:
            out.append(human_duration(obj["metadata"].get("creationTimestamp")))
        return out

    return cols + ([] if has_age else [_col("Age")]), cells


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def to_table(rt: ResourceType, objs: list[dict], list_meta: dict, include_object: str | None) -> dict:
    if rt.key in _BUILTIN_TABLES:
        cols, cells = _BUILTIN_TABLES[rt.key]
    elif rt.printer_columns:
        cols, cells = _printer_columns(rt)
    else:
        cols, cells = [_col("Age")], lambda o: [human_duration(o["metadata"].get("creationTimestamp"))]
    rows = []
    for obj in objs:
        row = {"cells": [obj["metadata"]["name"], *cells(obj)]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": [_col("Name", fmt="name"), *cols], "rows": rows}
