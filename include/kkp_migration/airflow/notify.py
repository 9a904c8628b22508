"""Telling people about a run: an approval waits, a step failed, the run ended.

Every migration DAG wires Airflow's own hook points to a `MigrationNotifier`: each gate's HITL
`notifiers` ("approval needed", called once the request is up), every task's `on_failure_callback`
("failed") and the report task's `on_success_callback` ("finished"). The notifier always logs one
line, naming the cluster (the default: nothing leaves Airflow). Where else an event goes is
deployment configuration, not DAG code, so the same DAG files serve every installation:

    [kkp_migration]
    notifiers = team_notifiers:slack, team_notifiers:mail

or `AIRFLOW__KKP_MIGRATION__NOTIFIERS=team_notifiers:slack,team_notifiers:mail`. Each entry is
`module:attribute` naming an Airflow notifier (a `BaseNotifier` such as the Slack, SMTP or any
provider's notifier) or a plain callable taking the task context; a module in plugins/ is
importable by every Airflow component. The context it gets carries `migration_event` (event,
cluster_id, dag_id, run_id, task_id, text, url), so a templated notifier says what happened:

    # plugins/team_notifiers.py
    from airflow.providers.slack.notifications.slack import SlackNotifier
    slack = SlackNotifier(slack_conn_id="slack", channel="#kkp", text="{{ migration_event.text }}")

A notifier that fails is logged and skipped: a chat outage never fails a migration step.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier
from airflow.sdk.configuration import conf
from airflow.sdk.module_loading import import_string

log = logging.getLogger(__name__)
SECTION, OPTION = "kkp_migration", "notifiers"
APPROVAL, FAILED, FINISHED = "approval needed", "failed", "finished"


class MigrationNotifier(BaseNotifier):
    def __init__(self, event: str):
        if event not in (APPROVAL, FAILED, FINISHED):
            raise ValueError(f"unknown migration event {event!r}")
        super().__init__()
        self.event = event

    def notify(self, context) -> None:
        event = describe(self.event, context)
        log.info("kkp-migration %s: %s", self.event, event["text"])
        for name, target in configured():
            try:
                # A BaseNotifier renders its templates into itself: give each event a fresh copy.
                (copy.copy(target) if isinstance(target, BaseNotifier) else target)(
                    {**context, "migration_event": event})
            except Exception:
                log.exception("notifier %s failed on %s; the run goes on", name, self.event)


def configured() -> list[tuple[str, Any]]:
    """(name, notifier) for each entry of [kkp_migration] notifiers, read at every event, so a
    change needs no restart and parsing a DAG never imports a notifier."""
    names = [n.strip() for n in (conf.get(SECTION, OPTION, fallback="") or "").split(",") if n.strip()]
    return [(name, import_string(name.replace(":", "."))) for name in names]


def describe(event: str, context) -> dict[str, Any]:
    """The event as data and as one sentence naming the cluster, with a link into the UI."""
    ti, params = context["ti"], context.get("params") or {}
    cluster = params.get("cluster_id")
    who = f"Cluster {cluster}" if cluster else ti.dag_id
    if event == APPROVAL:
        text = f"{who} waits for approval: {context['task'].subject}"
        page = f"/tasks/{ti.task_id}/required_actions"
    elif event == FAILED:
        text = f"{who}: {ti.task_id} failed: {context.get('exception') or 'see its log'}"
        page = f"/tasks/{ti.task_id}"
    else:
        report = ti.xcom_pull(task_ids=ti.task_id, key="report") or {}
        text = f"{who}: {ti.dag_id} finished: {report.get('outcome', 'see its report')}"
        page = ""
    base = conf.get("api", "base_url", fallback=None)
    url = f"{base.rstrip('/')}/dags/{ti.dag_id}/runs/{quote(ti.run_id)}{page}" if base else None
    return {"event": event, "cluster_id": cluster, "dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
            "text": text + (f" ({url})" if url else ""), "url": url}
