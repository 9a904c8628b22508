"""A Kubernetes API spoken in plain JSON dicts through the `kubernetes` client.

Raw JSON instead of the client's models: deserialising 5,000 pods into models costs seconds,
and one code path serves built-in and custom resources alike. Errors come out as one
sentence naming the cluster; transient ones are retried with a bound.
"""

from __future__ import annotations

import json
from typing import Iterator

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .errors import MigrationError, NeedsAttention, TransientError
from .retry import retry_transient

_TRANSIENT = {0, 429, 500, 502, 503, 504}


class KubeApiError(MigrationError):
    """A non-transient answer from an API server, with its HTTP code and Status reason."""

    def __init__(self, message: str, code: int, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason


class NotFound(KubeApiError, NeedsAttention):
    """404. Steps catch it where absence is an answer; one that escapes a step means the object or
    API the step needs is missing, which retrying cannot fix."""


class AccessDenied(KubeApiError, NeedsAttention):
    """401 or 403: credentials or permissions a person must fix; retrying cannot help."""


class TransientKubeError(TransientError):
    """A retryable answer (5xx, 429, no answer at all); `code` 0 when nothing answered."""

    def __init__(self, message: str, code: int, status_message: str = ""):
        super().__init__(message)
        self.code = code
        self.status_message = status_message


def _status_message(exc: ApiException) -> tuple[str, str]:
    try:
        body = json.loads(exc.body or "{}")
        causes = [c.get("message") for c in (body.get("details") or {}).get("causes") or [] if c.get("message")]
        message = " ".join([body.get("message") or exc.reason or "", *causes]).strip()
        return message, body.get("reason") or ""
    except ValueError:
        return (exc.reason or "").strip(), ""


class Kube:
    """One cluster's API. `what` names it in every error ("user cluster x9k2mp7qzt")."""

    def __init__(self, kubeconfig: dict, what: str, pool_size: int = 32, timeout: float = 30.0):
        if not isinstance(kubeconfig, dict) or not kubeconfig.get("clusters"):
            raise MigrationError(f"The kubeconfig for {what} has no clusters; check the connection or the "
                                 "admin-kubeconfig Secret.")
        cfg = client.Configuration()
        try:
            config.load_kube_config_from_dict(kubeconfig, client_configuration=cfg)
        except Exception as exc:  # the loader raises many types for one cause: a bad kubeconfig
            raise MigrationError(f"The kubeconfig for {what} cannot be used ({type(exc).__name__}); "
                                 "check the connection or the admin-kubeconfig Secret.") from None
        cfg.connection_pool_maxsize = pool_size
        cfg.retries = False
        self.what = what
        self.timeout = timeout
        self.api = client.ApiClient(cfg)
        self.server = cfg.host

    def close(self) -> None:
        self.api.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- raw requests ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, query: dict | None, body, content_type: str | None) -> dict:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            resp = self.api.call_api(
                path, method, query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                header_params=headers, body=body, auth_settings=["BearerToken"],
                _preload_content=False, _return_http_data_only=True, _request_timeout=self.timeout)
        except ApiException as exc:
            message, reason = _status_message(exc)
            text = f"{self.what}: {method} {path} answered {exc.status}: {message}"
            if exc.status in _TRANSIENT:
                raise TransientKubeError(text, exc.status, message) from None
            if exc.status == 401:
                raise AccessDenied(f"The credentials for {self.what} were refused (401 Unauthorized); "
                                   "renew the token in the connection or kubeconfig.", 401, reason) from None
            if exc.status == 403:
                raise AccessDenied(f"{text.rstrip('.')}; grant the credentials for {self.what} that permission "
                                   "(deploy/rbac/ lists every one the DAGs need).", 403, reason) from None
            if exc.status == 404:
                raise NotFound(f"{text.rstrip('.')}; check that {self.what} is the cluster meant and is fully set up.",
                               404, reason) from None
            raise KubeApiError(text, exc.status, reason) from None
        except AttributeError as exc:
            # The client turns a TLS failure into an ApiException without a body, then trips over
            # that missing body in its own handler; the ApiException is this error's context.
            cause = exc.__context__
            if not (isinstance(cause, ApiException) and cause.status == 0 and "SSL" in str(cause.reason)):
                raise
            raise NeedsAttention(f"{self.what} at {self.server} presented a certificate its kubeconfig does not "
                                 "trust; set the cluster's certificate-authority-data to the CA that signed it.") \
                from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientKubeError(f"{self.what} at {self.server} unreachable ({type(exc).__name__}); check the "
                                     "server URL in its kubeconfig and that it is up", 0) from None
        data = resp.data
        return json.loads(data) if data else {}

    def request(self, method: str, path: str, *, query: dict | None = None, body=None,
                content_type: str | None = None, retry: bool = True) -> dict:
        if not retry:
            return self._call(method, path, query, body, content_type)
        return retry_transient(lambda: self._call(method, path, query, body, content_type),
                               what=f"{method} {path} on {self.what}")

    def get(self, path: str, **query) -> dict:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str, **query) -> dict | None:
        try:
            return self.get(path, **query)
        except NotFound:
            return None

    def list(self, path: str, *, label_selector: str | None = None, field_selector: str | None = None,
             page: int = 500) -> Iterator[dict]:
        """Every item of a collection, fetched in pages so memory and latency stay flat."""
        token = None
        while True:
            out = self.get(path, limit=page, labelSelector=label_selector, fieldSelector=field_selector,
                           **({"continue": token} if token else {}))
            yield from out.get("items") or []
            token = (out.get("metadata") or {}).get("continue")
            if not token:
                return

    def list_all(self, path: str, **kw) -> list[dict]:
        return list(self.list(path, **kw))

    def merge_patch(self, path: str, patch: dict) -> dict:
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def delete(self, path: str, *, propagation: str = "Background", grace: int | None = None) -> bool:
        """Delete; True if something was deleted, False if it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            self.request("DELETE", path, body=body)
            return True
        except NotFound:
            return False


def path_for(api_version: str, plural: str, name: str | None = None, namespace: str | None = None) -> str:
    """REST path of a collection or object: `path_for("apps/v1", "daemonsets", "canal", "kube-system")`."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base
