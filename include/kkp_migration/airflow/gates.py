"""Approval gates in front of every destructive step (Airflow's human-in-the-loop operator).

The body is the plan an upstream task computed (markdown: what will happen, how many objects
where, what is left alone and why), so the approver decides on facts. "Stop here" skips every
later step but the run's report, which then says where and by whom the run was stopped.

A gate's templates (subject, body, the proceed option) may use `plan`, the XCom of its
`plan_task_id`, so an option says what it does ("Restart 21 pods"). Each request is announced to
the run's notifiers (notify.py).

A proceed answer goes on only inside the run's maintenance window (window.py: a late approval
waits for the next window or stops the run). A run the fleet started carries `fleet_approval`:
the fleet's approved wave gate stands for this gate's answer, checked against the fleet run's own
XComs (the wave must be approved and list this cluster), and recorded with who approved the wave.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.bases.skipmixin import SkipMixin

from .notify import APPROVAL, MigrationNotifier
from .outcomes import fail
from .window import WindowHold

STOP = "Stop here"
# The fleet DAG's wave gate and the task listing the wave's clusters (in group wave_<n>).
START_WAVE = "Start this wave"
WAVE_GATE, WAVE_CLUSTERS = "approve_wave", "clusters"


def counted(noun: str, plan_key: str) -> str:
    """Jinja for "<n> <noun>s", n the length of the plan's list `plan_key`: counted("pod", "to_restart")."""
    n = f"(plan.{plan_key} | length)"
    return "{{ %s }} {{ '%s' if %s == 1 else '%ss' }}" % (n, noun, n, noun)


def fleet_answer(context, proceed: str, form_defaults: dict) -> dict | None:
    """This gate's answer from the fleet's approved wave, or None when the run has no fleet_approval."""
    params, ti = context["params"], context["ti"]
    ref = params.get("fleet_approval")
    if not ref:
        return None
    cluster = params["cluster_id"]
    wave = f"wave_{ref.get('wave')}" if isinstance(ref, dict) else "?"
    pull = dict(dag_id=ref.get("dag_id"), run_id=ref.get("run_id")) if isinstance(ref, dict) else None
    gate = ti.xcom_pull(task_ids=f"{wave}.{WAVE_GATE}", **pull) if pull else None
    runs = (ti.xcom_pull(task_ids=f"{wave}.{WAVE_CLUSTERS}", **pull) or []) if pull else []
    listed = {run["conf"]["cluster_id"] for run in runs}
    if not gate or (gate.get("chosen_options") or [None])[0] != START_WAVE or cluster not in listed:
        message = (f"Cluster {cluster}: fleet_approval {ref!r} names no approved fleet wave that lists this cluster; "
                   "trigger the run without fleet_approval to approve each step here.")
        fail(ti, message)
    who = gate.get("responded_by_user") or {}
    return {"chosen_options": [proceed], "params_input": form_defaults, "responded_at": gate.get("responded_at"),
            "responded_by_user": {"id": who.get("id"), "name": f"{who.get('name') or who.get('id')} "
                                                              f"(fleet wave {ref['wave']}, {ref['run_id']})"}}


class MigrationGate(WindowHold, HITLOperator, SkipMixin):
    inherits_from_skipmixin = True
    ui_color = "#fbe8c8"
    template_fields = (*HITLOperator.template_fields, "options", "proceed")

    def __init__(self, *, proceed: str, plan_task_id: str | None = None, spare: tuple[str, ...] = ("report",),
                 response_timeout: timedelta | None = timedelta(hours=12), acts: str = "the next step", **kwargs):
        if plan_task_id and "body" not in kwargs:
            kwargs["body"] = "{{ plan.markdown }}"
        kwargs.setdefault("notifiers", [MigrationNotifier(APPROVAL)])
        super().__init__(options=[proceed, STOP], multiple=False, response_timeout=response_timeout, **kwargs)
        self.plan_task_id = plan_task_id
        self.proceed = proceed
        self.spare = spare
        self.acts = acts

    def render_template_fields(self, context, jinja_env=None) -> None:
        if self.plan_task_id:
            context = {**context, "plan": context["ti"].xcom_pull(task_ids=self.plan_task_id)}
        super().render_template_fields(context, jinja_env)

    def execute(self, context) -> Any:
        answer = fleet_answer(context, self.proceed, self.params.dump())
        if answer is None:
            # the run's `approvers` are the only respondents Airflow accepts (HTTP 403 for others)
            approvers = context["params"].get("approvers") or []
            if approvers:
                self.assigned_users = [{"id": user, "name": user} for user in approvers]
            return super().execute(context)
        self.log.info("Approved for this cluster by %s", answer["responded_by_user"]["name"])
        return self.go_on(context, answer)

    def go_on(self, context, answer: dict, event: Any = None) -> dict:
        """Proceed inside the window; outside it, wait for the next one (re-entering here) or stop."""
        self.hold(context, self.acts, "go_on", {"answer": answer})
        return answer

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        ret = super().execute_complete(context=context, event=event)
        who = (ret.get("responded_by_user") or {}).get("name") or "someone"
        if ret["chosen_options"][0] == self.proceed:
            self.log.info("%s chose %r: going on", who, self.proceed)
            return self.go_on(context, ret)
        self.log.warning("%s chose %r: the run stops here; nothing after this gate will change the cluster", who,
                         STOP)
        skip = [t for t in context["task"].get_flat_relatives(upstream=False)
                if t.task_id not in self.spare and not t.task_id.endswith(tuple("." + s for s in self.spare))]
        # skip() ends the task by raising, so the answer would never reach XCom (and the report)
        context["ti"].xcom_push(key="return_value", value=ret)
        if skip:
            self.skip(ti=context["ti"], tasks=skip)
        return ret
