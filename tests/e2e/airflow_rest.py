"""What an e2e test does through Airflow's public REST API: what a user's script or the UI would do.

Extends the dev stack's `AirflowAPI` (health, login, parsed DAGs) with connections, runs, task
instances, logs and the human-in-the-loop endpoint. An HTTP error fails the test with the
server's own explanation.
"""

from __future__ import annotations

import json
import urllib.error
from urllib.parse import quote, urlencode

from scripts.airflow_api import AirflowAPI


class AirflowRestError(AssertionError):
    def __init__(self, method: str, path: str, status: int, detail: str):
        super().__init__(f"{method} {path} -> {status}: {detail}")
        self.status = status


class AirflowREST(AirflowAPI):
    def call(self, method: str, path: str, body: dict | None = None, **query) -> dict:
        if query:
            path += "?" + urlencode(query, doseq=True)
        try:
            return self._request(method, path, body)
        except urllib.error.HTTPError as error:
            raise AirflowRestError(method, path, error.code, error.read().decode(errors="replace")) from None

    def health(self) -> dict:
        return self.call("GET", "/api/v2/monitor/health")

    def put_connection(self, conn_id: str, conn_type: str, extra: dict, **fields) -> None:
        """Create the connection, replacing one of the same id, as a user would in Admin -> Connections."""
        try:
            self.call("DELETE", f"/api/v2/connections/{quote(conn_id)}")
        except AirflowRestError as error:
            if error.status != 404:
                raise
        self.call("POST", "/api/v2/connections", {"connection_id": conn_id, "conn_type": conn_type,
                                                  "extra": json.dumps(extra), **fields})

    def put_pool(self, name: str, slots: int, include_deferred: bool = True) -> None:
        """Create or resize a pool, as Admin -> Pools does."""
        body = {"name": name, "slots": slots, "include_deferred": include_deferred}
        try:
            self.call("PATCH", f"/api/v2/pools/{quote(name)}", body)
        except AirflowRestError as error:
            if error.status != 404:
                raise
            self.call("POST", "/api/v2/pools", body)

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def dag(self, dag_id: str) -> dict | None:
        try:
            return self.call("GET", f"/api/v2/dags/{dag_id}")
        except AirflowRestError as error:
            if error.status == 404:
                return None
            raise

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict) -> str:
        """POST a run with `conf`, as the UI's Trigger form does; returns its run id."""
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances",
                         limit=100)["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}")

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of a task, oldest first, each with its state and the hostname it ran on."""
        tries = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/tries")
        return sorted(tries["task_instances"], key=lambda t: t["try_number"])

    def pending_approvals(self, dag_id: str, run_id: str) -> list[dict]:
        """Approval requests of the run nobody has answered yet (Browse -> Required Actions)."""
        return list(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/hitlDetails",
                              response_received="false")["hitl_details"])

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str, params_input: dict,
               map_index: int = -1) -> dict:
        return self.call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/"
                                  f"{map_index}/hitlDetails",
                         {"chosen_options": [option], "params_input": params_input})

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list:
        """The task's log events of one try (the worker's and the triggerer's), as the UI shows them."""
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/"
                                f"{try_number}", full_content="true")["content"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/"
                                f"{key}", deserialize="true")["value"]
