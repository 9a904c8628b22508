"""Airflow Connections -> KKP access and user-cluster clients, with every credential masked.

`kkp_seed` is a Connection of type kubernetes (extra `kube_config`, inline JSON/dict, or
`kube_config_path`); `kkp_api` a Connection of type http (host = the KKP URL, password = the
token, extra `ca_file` or `verify`). Any secrets backend that serves Connections works.
"""

from __future__ import annotations

import json

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from ..errors import BadInput
from ..kkp import ApiAccess, KkpAccess, SeedAccess
from ..kube import Kube
from ..usercluster import UserCluster

ACCESS_PATHS = ("seed", "api")


def mask_kubeconfig(kubeconfig: dict) -> None:
    """Register every credential in a kubeconfig with Airflow's log masker."""
    for user in kubeconfig.get("users") or []:
        for key in ("token", "client-key-data", "client-certificate-data", "password"):
            value = (user.get("user") or {}).get(key)
            if value:
                mask_secret(value)


def _seed_kubeconfig(conn) -> dict:
    extra = conn.extra_dejson
    raw = extra.get("kube_config") or extra.get("extra__kubernetes__kube_config")
    path = extra.get("kube_config_path") or extra.get("extra__kubernetes__kube_config_path")
    if raw:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                import yaml
                try:
                    raw = yaml.safe_load(raw)
                except yaml.YAMLError:
                    raw = None
        if not isinstance(raw, dict):
            raise BadInput(f"Connection {conn.conn_id}: extra kube_config is not a kubeconfig (JSON or YAML); "
                           "paste the seed's kubeconfig there.")
        return raw
    if path:
        import yaml
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh)
        except OSError as exc:
            raise BadInput(f"Connection {conn.conn_id}: kube_config_path {path} cannot be read "
                           f"({exc.strerror}); fix the path.") from None
        if not isinstance(data, dict):
            raise BadInput(f"Connection {conn.conn_id}: {path} is not a kubeconfig.")
        return data
    raise BadInput(f"Connection {conn.conn_id} has neither kube_config nor kube_config_path in its extra; add the "
                   "seed cluster's kubeconfig.")


def access_from_connection(access: str, conn, cluster_id: str, project_id: str | None) -> KkpAccess:
    """Build KKP access from an Airflow Connection (sync or async lookups both end here)."""
    if access == "seed":
        kubeconfig = _seed_kubeconfig(conn)
        mask_kubeconfig(kubeconfig)
        return SeedAccess(Kube(kubeconfig, f"seed (connection {conn.conn_id})"), cluster_id, project_id)
    if access == "api":
        if not conn.host:
            raise BadInput(f"Connection {conn.conn_id} has no host; set it to the KKP URL (https://kkp.example.com).")
        if not conn.password:
            raise BadInput(f"Connection {conn.conn_id} has no token in its password field; add a KKP API token.")
        mask_secret(conn.password)
        url = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
        if conn.port and f":{conn.port}" not in url.split("://", 1)[1]:
            url = f"{url}:{conn.port}"
        extra = conn.extra_dejson
        verify = extra.get("ca_file") or extra.get("verify", True)
        return ApiAccess(url, conn.password, project_id or "", cluster_id, verify=verify)
    raise BadInput(f"access must be one of {', '.join(ACCESS_PATHS)}, not {access!r}.")


class KkpHook(BaseHook):
    """Hands out KKP access for one cluster, through the seed or through the KKP API."""

    def __init__(self, access: str = "seed", seed_conn_id: str = "kkp_seed", api_conn_id: str = "kkp_api"):
        super().__init__()
        if access not in ACCESS_PATHS:
            raise BadInput(f"access must be one of {', '.join(ACCESS_PATHS)}, not {access!r}.")
        self.access = access
        self.conn_id = seed_conn_id if access == "seed" else api_conn_id

    def _connection(self):
        from airflow.exceptions import AirflowNotFoundException
        try:
            return self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            raise BadInput(f"Airflow connection {self.conn_id!r} does not exist; create it (Admin -> Connections) "
                           f"for access={self.access}.") from None

    def kkp(self, cluster_id: str, project_id: str | None) -> KkpAccess:
        return access_from_connection(self.access, self._connection(), cluster_id, project_id)

    async def akkp(self, cluster_id: str, project_id: str | None) -> KkpAccess:
        from airflow.providers.common.compat.connection import get_async_connection
        conn = await get_async_connection(self.conn_id, self)
        return access_from_connection(self.access, conn, cluster_id, project_id)


def user_cluster(kkp: KkpAccess) -> UserCluster:
    """The user cluster behind `kkp`, through the admin kubeconfig KKP hands out on that path."""
    kubeconfig = kkp.admin_kubeconfig()
    mask_kubeconfig(kubeconfig)
    return UserCluster(Kube(kubeconfig, f"user cluster {kkp.cluster_id}"), kkp.cluster_id)
