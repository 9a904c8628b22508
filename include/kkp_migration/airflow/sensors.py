"""Deferrable sensors for the runbook's waits ("until all Cilium pods are deployed and running",
"until the change is reflected in the kube-proxy ConfigMap", ...)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from .outcomes import fail
from .triggers import ClusterWaitTrigger


class ClusterWaitSensor(BaseSensorOperator):
    """Wait in the triggerer until `wait` (a name in kkp_migration.waits) holds on the run's cluster.

    `wait_args` is templated, so it can carry what an upstream step recorded (a timestamp, a mode).
    The cluster comes from the run's params: cluster_id, project_id, access, and the conn ids.
    """

    template_fields = ("wait_args",)
    ui_color = "#d8ecf3"

    def __init__(self, *, wait: str, timeout_param: str, wait_args: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.wait = wait
        self.wait_args = wait_args or {}
        self.timeout_param = timeout_param     # the run's param holding the wait's limit, in minutes

    def execute(self, context) -> Any:
        p = context["params"]
        seconds = float(p[self.timeout_param]) * 60
        self.defer(
            trigger=ClusterWaitTrigger(
                wait=self.wait, wait_args=self.wait_args, cluster_id=p["cluster_id"],
                project_id=p.get("project_id"), access=p["access"], seed_conn_id=p["seed_conn_id"],
                api_conn_id=p["api_conn_id"], deadline=time.time() + seconds),
            method_name="execute_complete",
            timeout=timedelta(seconds=seconds + 120),
        )

    def execute_complete(self, context, event: dict) -> str:
        cluster = context["params"]["cluster_id"]
        if event.get("error"):
            # credentials, permissions, a missing cluster: no retry helps
            fail(context["ti"], f"Cluster {cluster}: waiting for {self.wait} failed: {event['error']}",
                 AirflowFailException if event.get("permanent") else RuntimeError)
        if not event.get("done"):
            fail(context["ti"], f"Cluster {cluster}: {self.wait} did not happen within "
                                f"{context['params'][self.timeout_param]} minutes ({self.timeout_param}); still "
                                f"missing: {event.get('detail')}", AirflowSensorTimeout)
        self.log.info("Cluster %s: %s after %.1fs", cluster, event["detail"], event.get("waited", 0))
        return event["detail"]
