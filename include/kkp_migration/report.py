"""Markdown for the approval requests and the run's report: facts an approver can decide on.

Airflow's UI renders it (Required Actions, the run's Migration report tab), the task log shows it
as text, so tables stay small and every number comes with its noun.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

CNI = {"canal": "Canal", "cilium": "Cilium"}


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plural(n: int, noun: str) -> str:
    """plural(1, "pod") -> "1 pod", plural(21, "pod") -> "21 pods"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def on_off(flag) -> str:
    """A cluster feature flag as a person reads it (None: unknown)."""
    return {True: "on", False: "off"}.get(flag, "?")


def conf_block(dag_id: str, conf: dict) -> str:
    return f"Trigger `{dag_id}` with this conf:\n\n```json\n{json.dumps(conf, indent=2, sort_keys=True)}\n```"


def switch_gate(pre: dict, rollback: dict | None) -> str:
    c, orig, tgt = pre["cluster"], pre["original"], pre["target"]
    out = [f"### Switch cluster **{c['name']}** (`{c['id']}`, project `{c['project_id']}`) "
           f"from {CNI[orig['cni_type']]} {orig['cni_version']} to {CNI[tgt['cni_type']]} {tgt['cni_version']}",
           "",
           "**What will happen**",
           f"- The Cluster gets the label `unsafe-cni-migration: \"true\"` and `spec.cniPlugin` becomes "
           f"`{tgt['cni_type']} {tgt['cni_version']}` in one update (runbook steps 1-2).",
           f"- KKP deploys {CNI[tgt['cni_type']]} within about 5 minutes; {CNI[orig['cni_type']]} keeps running, "
           "and running pods keep their current network until they are restarted in a later, separately "
           "approved step.",
           "",
           table(["", "now", "after this step"], [
               ["CNI", f"{orig['cni_type']} {orig['cni_version']}", f"{tgt['cni_type']} {tgt['cni_version']}"],
               ["kube-proxy mode", orig["proxy_mode"], orig["proxy_mode"]],
               ["Konnectivity", on_off(orig["konnectivity"]), on_off(orig["konnectivity"])],
               ["Kubernetes", c["kube_version"], c["kube_version"]]])]
    if pre.get("findings"):
        out += ["", "**Preflight findings**"] + [f"- {f['level']}: {f['message']}" for f in pre["findings"]]
    if rollback:
        out += ["", "**If this goes wrong**", "", conf_block(rollback["dag_id"], rollback["conf"])]
    return "\n".join(out)


def restart_gate(plan: dict, cluster_id: str, target: str, old_cni: str, old_removed_later: bool) -> str:
    per_ns = Counter(k.split("/", 1)[0] for k in plan["to_restart"])
    bare = plan["without_controller"]
    out = [f"### Restart {plural(len(plan['to_restart']), 'pod')} in cluster `{cluster_id}` so {CNI[target]} "
           "manages them",
           "",
           f"Each pod is **evicted** (PodDisruptionBudgets are honoured) and re-created by its controller on "
           f"{CNI[target]}'s network. Pods already managed by {CNI[target]} are not touched.", ""]
    if per_ns:
        out.append(table(["namespace", "pods to restart"], [[ns, n] for ns, n in sorted(per_ns.items())]))
    else:
        out.append("No pod with a controller needs a restart.")
    out += ["", "**Left alone**",
            f"- {plural(plan['host_network'], 'host-network pod')} (they do not use the pod network)",
            f"- {plural(plan['already_managed'], 'pod')} already managed by {CNI[target]}",
            f"- {plural(plan['finished'], 'pod')} that finished or are being deleted"]
    if bare:
        consequence = (f" They stay on {CNI[old_cni]}'s network, which they lose when {CNI[old_cni]} is removed."
                       if old_removed_later else f" They have had no network since {CNI[old_cni]} was removed; "
                                                 "only a restart gives it back.")
        out += [f"- **{plural(len(bare), 'pod')} without a controller**: nothing would re-create them, so they are not "
                f"restarted unless you tick *include pods without a controller*; then each is deleted and "
                f"created again from its own manifest.{consequence}", ""]
        out.append(table(["pod without a controller"], [[k] for k in bare[:50]]))
        if len(bare) > 50:
            out.append(f"... and {len(bare) - 50} more")
    return "\n".join(out)


def removal_gate(plan: dict, cluster_id: str) -> str:
    objs = plan["objects"]
    by_kind = Counter(o["kind"] for o in objs)
    out = [f"### Delete {plural(len(objs), CNI[plan['cni']] + ' ' + plan['version'] + ' object')} from cluster "
           f"`{cluster_id}`",
           "", "What the runbook's `kubectl delete -f` of that version's manifest would delete, limited to what "
               "exists now. Objects already gone are skipped.", "",
           table(["kind", "count", "names"], [[k, n, ", ".join(sorted(o["name"] for o in objs if o["kind"] == k)[:6])
                                               + (" ..." if n > 6 else "")] for k, n in sorted(by_kind.items())])]
    if plan.get("shared_crds"):
        out += ["", "**CRDs that are not " + CNI[plan["cni"]] + "'s own**: deleting one deletes every object of "
                "its kind in the cluster, whoever created it. They are kept unless you untick *keep shared CRDs*.",
                table(["CRD", "objects it holds now"], [[k, v] for k, v in sorted(plan["shared_crds"].items())])]
    return "\n".join(out)


def machines_gate(mds: list[dict], cluster_id: str, without_controller: list[str]) -> str:
    rows = [[md["metadata"]["name"], (md.get("spec") or {}).get("replicas", 1)] for md in mds]
    out = [f"### Rolling restart of {plural(len(mds), 'machine deployment')} in cluster `{cluster_id}`",
           "", "Every machine is replaced one at a time (the deployment's maxSurge / maxUnavailable), so no node "
               "keeps leftovers of the old network configuration. Pods on a replaced node are evicted and "
               "rescheduled.", "",
           table(["MachineDeployment", "machines"], rows) if rows else "This cluster has no machine deployments."]
    if without_controller:
        out += ["", f"**{plural(len(without_controller), 'pod')} without a controller** are deleted when their node is "
                    "drained; their manifests are kept now and each is created again after the roll:",
                table(["pod without a controller"], [[k] for k in without_controller])]
    return "\n".join(out)


def run_report(title: str, outcome: str, sections: list[tuple[str, str]]) -> str:
    out = [f"# {title}", "", f"**Outcome:** {outcome}"]
    for head, body in sections:
        out += ["", f"## {head}", "", body]
    return "\n".join(out)


def approvals_table(approvals: list[dict]) -> str:
    """Who answered which request, when, and with which form values (e.g. include pods without a controller)."""
    if not approvals:
        return "No approval was answered."
    return table(["step", "answer", "with", "by", "at"], [
        [a["gate"], a["answer"], _form_values(a["params"]), a["by"], moment(a["at"])] for a in approvals])


def _form_values(values: dict) -> str:
    """{"include_without_controller": True} -> "include without controller: yes"."""
    return ", ".join(f"{k.replace('_', ' ')}: {('yes' if v else 'no') if isinstance(v, bool) else v}"
                     for k, v in sorted(values.items())) or "-"


def moment(at: str) -> str:
    """An answer's timestamp to the second, in UTC as Airflow records it."""
    try:
        return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return at


def steps_table(tasks: list[dict], order: list[str], stopped_gate: str | None) -> str:
    """One row per runbook step (a top-level task or task group, in `order`): its result, its time,
    and how much of it was waiting for an approval. `tasks`: the run's finished tasks, each with
    task_id, state, seconds and kind ("gate", "plumbing" for branches and joins, or "work")."""
    rows = []
    for step in order:
        mine = [t for t in tasks if t["task_id"] == step or t["task_id"].startswith(step + ".")]
        if not mine:
            continue
        states = {t["state"] for t in mine if t["kind"] != "plumbing"}
        if "failed" in states:
            result = "failed"
        elif "upstream_failed" in states:
            result = "not run (an earlier step failed)"
        elif any(t["task_id"] == stopped_gate for t in mine):
            result = "stopped here"
        elif "success" in states:
            result = "done"
        else:
            result = "skipped"
        took = sum(t["seconds"] or 0 for t in mine)
        waited = sum(t["seconds"] or 0 for t in mine if t["kind"] == "gate")
        rows.append([step, result, "" if result == "skipped" else _duration(took), _duration(waited) if waited else ""])
    return table(["step", "result", "time", "of which waiting for approval"], rows)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def before_after_table(before: dict, after: dict | None) -> str:
    after = after or {}
    keys = [("CNI", lambda c: f"{c.get('cni_type')} {c.get('cni_version')}"),
            ("kube-proxy mode", lambda c: c.get("proxy_mode")),
            ("Konnectivity", lambda c: on_off(c.get("konnectivity")))]
    return table(["", "before", "after"], [[k, f(before), f(after) if after else "(unchanged)"] for k, f in keys])


def proxy_gate(pre: dict, rollback: dict) -> str:
    c, orig, mode = pre["cluster"], pre["original"], pre["target"]["proxy_mode"]
    if "ebpf" in (mode, orig["proxy_mode"]):
        effect = ("KKP removes kube-proxy and restarts every Cilium pod with kube-proxy replacement on"
                  if mode == "ebpf" else
                  f"KKP restarts every Cilium pod without kube-proxy replacement and deploys kube-proxy in mode {mode}")
        effect += " (within about 5 minutes); Service traffic is interrupted while the Cilium pods restart."
    else:
        effect = (f"KKP rewrites the kube-proxy ConfigMap to mode {mode} (within about 5 minutes); then the "
                  "kube-proxy DaemonSet is restarted so every node applies it.")
    out = [f"### Change kube-proxy mode of cluster **{c['name']}** (`{c['id']}`) from {orig['proxy_mode']} to {mode}",
           "", "**What will happen**",
           f"- The Cluster gets the label `unsafe-cni-migration: \"true\"` and `spec.clusterNetwork.proxyMode: {mode}`.",
           f"- {effect}",
           "- A later, separately approved step can roll the machine deployments to clear leftover rules.", "",
           table(["", "now", "after"], [["proxy mode", orig["proxy_mode"], mode],
                                         ["CNI", f"{orig['cni_type']} {orig['cni_version']}",
                                          f"{orig['cni_type']} {orig['cni_version']}"]])]
    if pre.get("findings"):
        out += ["", "**Preflight findings**"] + [f"- {f['level']}: {f['message']}" for f in pre["findings"]]
    out += ["", "**If this goes wrong**", "", conf_block(rollback["dag_id"], rollback["conf"])]
    return "\n".join(out)
