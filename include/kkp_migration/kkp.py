"""One interface to KKP, two backends: the seed's Cluster resource, or the KKP REST API v2.

Both give the same `ClusterInfo`, apply the same changes (labels, CNI, proxy mode), hand out
the user cluster's admin kubeconfig the way KKP offers it on that path, and restart machine
deployments. KKP's own admission check runs on either path; its refusal comes back as `Refused`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Protocol

import requests
import yaml

from .errors import BadInput, MigrationError, Refused, TransientError
from .kube import Kube, KubeApiError, NotFound
from .retry import retry_transient

MIGRATION_LABEL = "unsafe-cni-migration"
# {"mode", "at"} of the last proxy-mode change this project made, written with the change itself
PROXY_MODE_CHANGE = "kkp-cni-migration.kubermatic.io/proxy-mode-change"
CLUSTERS = "/apis/kubermatic.k8c.io/v1/clusters"


class StaleCluster(MigrationError):
    """A conditional update found the Cluster changed since it was read."""


@dataclass(frozen=True)
class ClusterInfo:
    """What the migration needs to know about a KKP user cluster."""

    id: str
    project_id: str
    name: str
    kube_version: str
    cni_type: str
    cni_version: str
    proxy_mode: str
    konnectivity: bool
    labels: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    resource_version: str = ""     # the seed object's; the KKP API does not expose one

    def unhealthy(self) -> list[str]:
        return sorted(k for k, v in self.health.items() if v != "HealthStatusUp")


class KkpAccess(Protocol):
    cluster_id: str

    def get_cluster(self) -> ClusterInfo: ...

    def update_cluster(self, *, labels: dict | None = None, cni: tuple[str, str] | None = None,
                       proxy_mode: str | None = None, annotations: dict | None = None,
                       expect_version: str = "") -> ClusterInfo:
        """`expect_version`: change only the Cluster read at that resource_version (StaleCluster
        otherwise), where the access path supports a precondition."""

    def admin_kubeconfig(self) -> dict: ...

    def restart_machine_deployment(self, name: str) -> None: ...


def _cluster_patch(labels, cni, proxy_mode, annotations=None) -> dict:
    patch: dict = {}
    if labels:
        patch.setdefault("metadata", {})["labels"] = labels
    if annotations:
        patch.setdefault("metadata", {})["annotations"] = annotations
    if cni:
        patch.setdefault("spec", {})["cniPlugin"] = {"type": cni[0], "version": cni[1]}
    if proxy_mode:
        patch.setdefault("spec", {}).setdefault("clusterNetwork", {})["proxyMode"] = proxy_mode
    return patch


class SeedAccess:
    """KKP through the seed cluster: the cluster-scoped `Cluster` object and its namespace's Secret."""

    def __init__(self, seed: Kube, cluster_id: str, project_id: str | None = None):
        self.seed = seed
        self.cluster_id = cluster_id
        self.project_id = project_id or None

    def _raw(self) -> dict:
        try:
            return self.seed.get(f"{CLUSTERS}/{self.cluster_id}")
        except NotFound:
            raise BadInput(f"Cluster {self.cluster_id} does not exist in the seed ({self.seed.what}); check "
                           "cluster_id (the cluster ID, not its human-readable name).") from None

    def get_cluster(self) -> ClusterInfo:
        obj = self._raw()
        info = _info_from_seed(obj)
        if self.project_id and info.project_id != self.project_id:
            raise BadInput(f"Cluster {self.cluster_id} belongs to project {info.project_id or '(none)'}, not "
                           f"{self.project_id}; fix project_id.")
        return info

    def update_cluster(self, *, labels=None, cni=None, proxy_mode=None, annotations=None,
                       expect_version="") -> ClusterInfo:
        patch = _cluster_patch(labels, cni, proxy_mode, annotations)
        if expect_version:          # a merge patch carrying resourceVersion is conditional: 409 if stale
            patch.setdefault("metadata", {})["resourceVersion"] = expect_version
        try:
            obj = self.seed.merge_patch(f"{CLUSTERS}/{self.cluster_id}", patch)
        except KubeApiError as exc:
            if exc.code == 409 and expect_version:
                raise StaleCluster(f"Cluster {self.cluster_id} changed since it was read "
                                   f"(resourceVersion {expect_version}).") from None
            if exc.code in (400, 403, 422) or "denied the request" in str(exc):
                raise Refused(f"KKP refused the change to cluster {self.cluster_id}: {_after_colon(exc)}") from None
            raise
        return _info_from_seed(obj)

    def admin_kubeconfig(self) -> dict:
        obj = self._raw()
        ns = (obj.get("status") or {}).get("namespaceName") or f"cluster-{self.cluster_id}"
        try:
            secret = self.seed.get(f"/api/v1/namespaces/{ns}/secrets/admin-kubeconfig")
        except NotFound:
            raise MigrationError(f"The admin kubeconfig of cluster {self.cluster_id} (Secret {ns}/admin-kubeconfig "
                                 "in the seed) is missing; the cluster's control plane is not ready.") from None
        import base64
        raw = base64.b64decode((secret.get("data") or {}).get("kubeconfig", "")).decode()
        return _parse_kubeconfig(raw, self.cluster_id)

    def restart_machine_deployment(self, name: str) -> None:
        """What KKP's restart endpoint does: a new forceRestart timestamp on the machine template."""
        user = Kube(self.admin_kubeconfig(), f"user cluster {self.cluster_id}")
        with user:
            user.merge_patch(
                f"/apis/cluster.k8s.io/v1alpha1/namespaces/kube-system/machinedeployments/{name}",
                {"spec": {"template": {"metadata": {"annotations": {"forceRestart": str(time.time_ns())}}}}})


def _after_colon(exc: Exception) -> str:
    text = str(exc)
    marker = "answered "
    if marker in text:
        text = text.split(marker, 1)[1].split(": ", 1)[-1]
    return text


def _parse_kubeconfig(raw: str, cluster_id: str) -> dict:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict) or not data.get("clusters"):
        raise MigrationError(f"The admin kubeconfig KKP returned for cluster {cluster_id} is not a kubeconfig.")
    return data


def _info_from_seed(obj: dict) -> ClusterInfo:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]
    cni = spec.get("cniPlugin") or {}
    net = spec.get("clusterNetwork") or {}
    return ClusterInfo(
        id=meta["name"], project_id=(meta.get("labels") or {}).get("project-id", ""),
        name=spec.get("humanReadableName", ""), kube_version=str(spec.get("version", "")),
        cni_type=cni.get("type", ""), cni_version=cni.get("version", ""),
        proxy_mode=net.get("proxyMode", ""), konnectivity=bool(net.get("konnectivityEnabled", False)),
        labels=dict(meta.get("labels") or {}), health=dict(status.get("extendedHealth") or {}),
        annotations=dict(meta.get("annotations") or {}), resource_version=str(meta.get("resourceVersion", "")))


class ApiAccess:
    """KKP through its REST API v2 (the dashboard's API), with a bearer token."""

    def __init__(self, url: str, token: str, project_id: str, cluster_id: str, *, verify=True,
                 timeout: float = 30.0):
        if not project_id:
            raise BadInput(f"project_id is required to reach cluster {cluster_id} through the KKP API; set it, "
                           "or use access=seed.")
        self.base = url.rstrip("/")
        self.cluster_id = cluster_id
        self.project_id = project_id
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.verify = verify    # passed per request: REQUESTS_CA_BUNDLE would override a session's

    @property
    def _path(self) -> str:
        return f"/api/v2/projects/{self.project_id}/clusters/{self.cluster_id}"

    def _request(self, method: str, path: str, **kw) -> requests.Response:
        def once():
            try:
                resp = self.session.request(method, self.base + path, timeout=self.timeout, verify=self.verify,
                                            **kw)
            except requests.exceptions.SSLError:
                raise BadInput(f"The KKP API at {self.base} presented a certificate that is not trusted; set "
                               "the CA in the connection's extra (ca_file).") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise TransientError(f"KKP API at {self.base} unreachable ({type(exc).__name__}); check the host of "
                                     "the connection and that KKP is up") from None
            if resp.status_code in (429, 500, 502, 503, 504):
                raise TransientError(f"KKP API {method} {path} answered {resp.status_code}")
            return resp
        return retry_transient(once, what=f"KKP API {method} {path}")

    def _json(self, resp: requests.Response, what: str):
        if resp.status_code < 300:
            return resp.json() if resp.content else {}
        message = _api_message(resp)
        if resp.status_code == 401:
            raise BadInput(f"The KKP API at {self.base} refused the token (401); renew the token in the "
                           "kkp_api connection.")
        if resp.status_code == 403:
            raise BadInput(f"The KKP API token may not see project {self.project_id} (403: {message}); fix "
                           "project_id or the token's permissions.")
        if resp.status_code == 404:
            raise BadInput(f"Cluster {self.cluster_id} was not found in project {self.project_id} by the KKP API "
                           f"(404: {message}); check cluster_id and project_id.")
        if resp.status_code in (400, 422):
            raise Refused(f"KKP refused the change to cluster {self.cluster_id}: {message}")
        raise MigrationError(f"KKP API {what} for cluster {self.cluster_id} answered {resp.status_code}: {message}")

    def get_cluster(self) -> ClusterInfo:
        obj = self._json(self._request("GET", self._path), "get cluster")
        health = self._json(self._request("GET", self._path + "/health"), "get health")
        return _info_from_api(obj, self.project_id, health)

    def update_cluster(self, *, labels=None, cni=None, proxy_mode=None, annotations=None,
                       expect_version="") -> ClusterInfo:
        # KKP's API takes no precondition (its cluster has no resourceVersion): expect_version is moot
        patch = _cluster_patch(labels, cni, proxy_mode, annotations)
        api_patch = {k: v for k, v in (patch.get("metadata") or {}).items()}
        if "spec" in patch:
            api_patch["spec"] = patch["spec"]
        resp = self._request("PATCH", self._path, data=json.dumps(api_patch),
                             headers={"Content-Type": "application/merge-patch+json"})
        obj = self._json(resp, "patch cluster")
        return _info_from_api(obj, self.project_id, {})

    def admin_kubeconfig(self) -> dict:
        resp = self._request("GET", self._path + "/kubeconfig")
        if resp.status_code >= 300:
            self._json(resp, "get kubeconfig")
        return _parse_kubeconfig(resp.text, self.cluster_id)

    def restart_machine_deployment(self, name: str) -> None:
        self._json(self._request("POST", f"{self._path}/machinedeployments/{name}/restart"),
                   f"restart machine deployment {name}")


def _api_message(resp: requests.Response) -> str:
    try:
        return resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return resp.text[:200]


def _info_from_api(obj: dict, project_id: str, health: dict) -> ClusterInfo:
    spec = obj.get("spec") or {}
    cni = spec.get("cniPlugin") or {}
    net = spec.get("clusterNetwork") or {}
    return ClusterInfo(
        id=obj.get("id", ""), project_id=project_id, name=obj.get("name", ""),
        kube_version=str(spec.get("version", "")), cni_type=cni.get("type", ""), cni_version=cni.get("version", ""),
        proxy_mode=net.get("proxyMode", ""), konnectivity=bool(net.get("konnectivityEnabled", False)),
        labels=dict(obj.get("labels") or {}), annotations=dict(obj.get("annotations") or {}),
        health={k: v for k, v in (health or {}).items() if isinstance(v, str)})
