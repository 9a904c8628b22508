"""Approval gates in front of every destructive step (Airflow's human-in-the-loop operator).

The body is the plan an upstream task computed (markdown: what will happen, how many objects
where, what is left alone and why), so the approver decides on facts. "Stop here" skips every
later step but the run's report, which then says where and by whom the run was stopped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.bases.skipmixin import SkipMixin

STOP = "Stop here"


class MigrationGate(HITLOperator, SkipMixin):
    inherits_from_skipmixin = True
    ui_color = "#fbe8c8"

    def __init__(self, *, proceed: str, plan_task_id: str | None = None, spare: tuple[str, ...] = ("report",),
                 response_timeout: timedelta | None = timedelta(hours=12), **kwargs):
        if plan_task_id and "body" not in kwargs:
            kwargs["body"] = "{{ ti.xcom_pull(task_ids='%s')['markdown'] }}" % plan_task_id
        super().__init__(options=[proceed, STOP], multiple=False, response_timeout=response_timeout, **kwargs)
        self.proceed = proceed
        self.spare = spare

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        ret = super().execute_complete(context=context, event=event)
        who = (ret.get("responded_by_user") or {}).get("name") or "someone"
        if ret["chosen_options"][0] == self.proceed:
            self.log.info("%s chose %r: going on", who, self.proceed)
            return ret
        self.log.warning("%s chose %r: the run stops here; nothing after this gate will change the cluster", who,
                         STOP)
        skip = [t for t in context["task"].get_flat_relatives(upstream=False)
                if t.task_id not in self.spare and not t.task_id.endswith(tuple("." + s for s in self.spare))]
        # skip() ends the task by raising, so the answer would never reach XCom (and the report)
        context["ti"].xcom_push(key="return_value", value=ret)
        if skip:
            self.skip(ti=context["ti"], tasks=skip)
        return ret
