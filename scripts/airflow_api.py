"""Just enough of Airflow's REST API for the dev stack to tell when it is up and what it parsed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class AirflowAPI:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self._token = ""

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def healthy(self) -> bool:
        """Whether the API server answers and its metadatabase and scheduler report healthy."""
        try:
            health = self._request("GET", "/api/v2/monitor/health")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def login(self, username: str, password: str) -> None:
        self._token = self._request("POST", "/auth/token",
                                    {"username": username, "password": password})["access_token"]

    def dags(self) -> dict[str, str]:
        """DAG id -> the file it was parsed from."""
        return {d["dag_id"]: d["fileloc"] for d in self._request("GET", "/api/v2/dags?limit=100")["dags"]}

    def import_errors(self) -> dict[str, str]:
        """File name -> the error the dag-processor hit importing it."""
        found = self._request("GET", "/api/v2/importErrors?limit=100")["import_errors"]
        return {e["filename"]: e.get("stack_trace", "") for e in found}
