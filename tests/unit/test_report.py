"""The run report's tables: one row per runbook step with its result and time, approvals with what was ticked."""

from __future__ import annotations

from kkp_migration import report

ORDER = ["preflight", "step_1_2_switch_cni", "step_3_restart_pods", "step_5_proxy_mode", "verify", "report"]


def task(task_id: str, state: str, seconds: float | None, kind: str = "work") -> dict:
    return {"task_id": task_id, "state": state, "seconds": seconds, "kind": kind}


def rows(markdown: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()[2:]]


def test_each_step_is_one_row_in_runbook_order_with_its_approval_wait():
    tasks = [task("verify", "success", 0.7),
             task("step_1_2_switch_cni.approve_switch", "success", 83.9, "gate"),
             task("step_1_2_switch_cni.label_and_switch", "success", 0.3),
             task("step_1_2_switch_cni.wait_cilium_ready", "success", 7.3),
             task("preflight", "success", 3.0),
             task("step_5_proxy_mode.requested", "success", 0.6, "plumbing"),
             task("step_5_proxy_mode.not_requested", "success", 0.0, "plumbing"),
             task("step_5_proxy_mode.set_proxy_mode", "skipped", None)]

    assert rows(report.steps_table(tasks, ORDER, stopped_gate=None)) == [
        ["preflight", "done", "3.0 s", ""],
        ["step_1_2_switch_cni", "done", "1 min 32 s", "1 min 24 s"],
        ["step_5_proxy_mode", "skipped", "", ""],
        ["verify", "done", "0.7 s", ""]]


def test_a_stop_and_a_failure_say_where_the_run_ended():
    tasks = [task("step_1_2_switch_cni.approve_switch", "success", 2.0, "gate"),
             task("step_1_2_switch_cni.label_and_switch", "skipped", None),
             task("step_3_restart_pods.restart", "failed", 4.0),
             task("verify", "upstream_failed", None)]

    results = {row[0]: row[1] for row in rows(report.steps_table(tasks, ORDER, "step_1_2_switch_cni.approve_switch"))}

    assert results == {"step_1_2_switch_cni": "stopped here", "step_3_restart_pods": "failed",
                       "verify": "not run (an earlier step failed)"}


def test_an_approval_row_says_who_when_and_what_was_ticked():
    approval = {"gate": "step_3_restart_pods.approve_pod_restart", "answer": "Restart 1 pod", "by": "admin",
                "at": "2026-11-25 17:15:23.117185+00:00", "params": {"include_without_controller": True}}

    assert rows(report.approvals_table([approval])) == [[
        "step_3_restart_pods.approve_pod_restart", "Restart 1 pod", "include without controller: yes", "admin",
        "2026-11-25 17:15:23 UTC"]]
    assert report.plural(1, "pod") == "1 pod" and report.plural(812, "pod") == "812 pods"


def test_the_restart_gate_counts_pods_per_namespace_and_says_what_is_left_alone_and_why():
    plan = {"to_restart": ["shop/web-1", "shop/web-2", "kube-system/coredns-1"], "host_network": 3,
            "already_managed": 2, "finished": 1, "without_controller": ["default/debug-shell"]}

    body = report.restart_gate(plan, "abc123", "cilium", "canal", old_removed_later=True)

    assert "### Restart 3 pods in cluster `abc123` so Cilium manages them" in body
    assert "| kube-system | 1 |" in body and "| shop | 2 |" in body
    assert "- 3 host-network pods (they do not use the pod network)" in body
    assert "- 2 pods already managed by Cilium" in body and "- 1 pod that finished or are being deleted" in body
    assert "**1 pod without a controller**" in body and "include pods without a controller" in body
    assert "which they lose when Canal is removed" in body and "| default/debug-shell |" in body
