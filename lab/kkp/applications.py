"""KKP's user-cluster application controller, for the one application the lab knows: `cilium`.

It installs the chart an ApplicationInstallation names (plus what Cilium's agent and operator
make at run time: the cilium.io CRDs, the certgen secrets), keeps a finalizer on it, puts back
any release object deleted while the installation exists (which is why the runbook's
`helm template ... | kubectl delete -f -` does not stick), and on deletion uninstalls the
release (hooks, CRDs and runtime secrets stay, as with `helm uninstall`) before letting go.
"""

from __future__ import annotations

import base64
import json
import logging

import yaml

from lab.apiserver.store import Event, now_iso
from lab.cluster import Cluster

from . import cilium
from . import objects as o
from .crds import APPLICATION_INSTALLATION

log = logging.getLogger("lab.kkp")
GROUP, PLURAL = "apps.kubermatic.k8c.io", "applicationinstallations"
FINALIZER = "kubermatic.k8c.io/cleanup-application-installation"
_WATCHED = [("apps", "daemonsets"), ("apps", "deployments"), ("", "configmaps"), ("", "serviceaccounts"),
            ("", "services"), ("rbac.authorization.k8s.io", "clusterroles"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"), ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "rolebindings"), ("batch", "jobs"), ("", "namespaces")]
_RUNTIME_SECRETS = ("cilium-ca", "hubble-server-certs", "hubble-relay-client-certs")


def installation(version: str, vals: dict) -> dict:
    """The ApplicationInstallation KKP's cni-application-installation-controller creates."""
    return {"apiVersion": f"{GROUP}/v1", "kind": "ApplicationInstallation",
            "metadata": {"name": "cilium", "namespace": cilium.NS,
                         "labels": {"apps.kubermatic.k8c.io/managed-by": "kkp"}},
            "spec": {"namespace": {"name": cilium.NS, "create": False},
                     "applicationRef": {"name": "cilium", "version": version},
                     "valuesBlock": yaml.safe_dump(vals, sort_keys=True),
                     "deployOptions": {"helm": {"atomic": True, "wait": True, "timeout": "10m"}}}}


class ApplicationController:
    def __init__(self, cluster: Cluster, reconcile_delay: float):
        self.cluster = cluster
        self.store = cluster.store
        self.reconcile_delay = reconcile_delay
        self.installed: dict[tuple[str, str], list[dict]] = {}   # (ns, name) -> release objects
        self.revisions: dict[tuple[str, str], tuple[int, str]] = {}
        self._pending: set[tuple[str, str]] = set()

    def install(self) -> None:
        if self.store.types.get((GROUP, PLURAL)) is None:
            self.store.create(self.store.rtype("apiextensions.k8s.io", "customresourcedefinitions"),
                              APPLICATION_INSTALLATION)
        self.store.listen(GROUP, PLURAL, self._on_installation)
        for group, plural in _WATCHED:
            self.store.listen(group, plural, self._on_release_object)

    # ---- events -----------------------------------------------------------------------------------

    def _on_installation(self, event: Event) -> None:
        meta = event.obj["metadata"]
        if event.type != "DELETED":
            self.schedule(meta["namespace"], meta["name"], 0)

    def _on_release_object(self, event: Event) -> None:
        if event.type != "DELETED":
            return
        ann = event.obj["metadata"].get("annotations") or {}
        if ann.get("meta.helm.sh/release-name") == cilium.RELEASE:
            self.schedule(ann.get("meta.helm.sh/release-namespace", cilium.NS), "cilium", self.reconcile_delay)

    def schedule(self, namespace: str, name: str, delay: float) -> None:
        key = (namespace, name)
        if key in self._pending:
            return
        self._pending.add(key)
        self.cluster.clock.later(delay, self._run, key)

    def _run(self, key: tuple[str, str]) -> None:
        self._pending.discard(key)
        try:
            self.reconcile(*key)
        except Exception:  # a controller keeps going; the next event retries
            log.exception("application controller of %s failed on %s/%s", self.cluster.name, *key)

    # ---- reconcile -------------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        rt = self.store.types.get((GROUP, PLURAL))
        app = self.store.try_get(rt, namespace, name) if rt else None
        if app is None:
            return
        if app["metadata"].get("deletionTimestamp"):
            self._uninstall(rt, app)
            return
        if FINALIZER not in (app["metadata"].get("finalizers") or []):
            app = self.store.mutate(rt, namespace, name, lambda a: a["metadata"].setdefault(
                "finalizers", []).append(FINALIZER))
        spec = app.get("spec") or {}
        if (spec.get("applicationRef") or {}).get("name") != "cilium":
            self._status(rt, app, False, "the lab's application controller only knows the cilium chart")
            return
        version = spec["applicationRef"]["version"]
        vals = yaml.safe_load(spec.get("valuesBlock") or "") or spec.get("values") or {}
        self._install(rt, app, version, vals)

    def _install(self, rt, app, version: str, vals: dict) -> None:
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        for crd in cilium.runtime_crds(version):               # what the operator creates on start
            if self.store.try_get(self.store.rtype("apiextensions.k8s.io", "customresourcedefinitions"), None,
                                  crd["metadata"]["name"]) is None:
                o.apply(self.store, crd)
        rendered = cilium.manifest(version, vals)
        applied = o.apply_all(self.store, rendered)
        wanted = {_ident(obj) for obj in applied}
        for old in self.installed.get(key, []):                # an upgrade drops what the new chart lacks
            if _ident(old) not in wanted and not cilium.is_hook(old):
                o.delete(self.store, old)
        self.installed[key] = applied
        self._runtime_secrets()
        revision = self._record_release(key, version, rendered)
        self._status(rt, app, True, "", version=version, revision=revision)

    def _record_release(self, key, version: str, rendered: list[dict]) -> int:
        """One Helm release Secret per revision, as `helm upgrade` leaves them."""
        digest = o.checksum([version, [(_ident(r), r.get("spec"), r.get("data")) for r in rendered]])
        revision, last = self.revisions.get(key, (0, ""))
        if digest != last:
            revision += 1
            self.revisions[key] = (revision, digest)
            body = base64.b64encode(json.dumps({"name": cilium.RELEASE, "version": revision,
                                                "chart": f"cilium-{version}"}).encode()).decode()
            o.apply(self.store, {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                                 "metadata": o.meta(f"sh.helm.release.v1.{cilium.RELEASE}.v{revision}", cilium.NS,
                                                    {"owner": "helm", "name": cilium.RELEASE,
                                                     "status": "deployed", "version": str(revision)}),
                                 "data": {"release": body}})
        return revision

    def _runtime_secrets(self) -> None:
        secrets = self.store.rtype("", "secrets")
        for name in _RUNTIME_SECRETS:
            if self.store.try_get(secrets, cilium.NS, name) is None:
                self.store.create(secrets, {"metadata": {"name": name, "namespace": cilium.NS},
                                            "type": "kubernetes.io/tls",
                                            "data": {"tls.crt": "", "tls.key": ""}})

    def _uninstall(self, rt, app) -> None:
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        release = self.installed.pop(key, None)
        if release is None and (app.get("spec") or {}).get("applicationRef", {}).get("name") == "cilium":
            version = app["spec"]["applicationRef"]["version"]
            release = cilium.manifest(version, yaml.safe_load(app["spec"].get("valuesBlock") or "") or {})
        for obj in release or []:
            if not cilium.is_hook(obj):
                o.delete(self.store, obj)
        secrets = self.store.rtype("", "secrets")
        for secret in list(self.store.items(secrets, cilium.NS)):
            if (secret["metadata"].get("labels") or {}).get("name") == cilium.RELEASE:
                self.store.delete(secrets, cilium.NS, secret["metadata"]["name"])
        self.revisions.pop(key, None)
        self.store.mutate(rt, key[0], key[1], lambda a: a["metadata"].__setitem__(
            "finalizers", [f for f in a["metadata"].get("finalizers") or [] if f != FINALIZER]))

    def _status(self, rt, app, ready: bool, message: str, version: str = "", revision: int = 0) -> None:
        now = now_iso()
        cond = {"status": "True" if ready else "False", "reason": "InstallationSuccessful" if ready
                else "InstallationFailed", "message": message, "lastHeartbeatTime": now}
        status = {"method": "helm",
                  "conditions": {"ManifestsRetrieved": {**cond, "status": "True", "reason": "ManifestsRetrieved"},
                                 "Ready": cond}}
        if ready:
            status["applicationVersion"] = {"version": version}
            status["helmRelease"] = {"name": cilium.RELEASE, "version": revision,
                                     "info": {"status": "deployed", "description": "Upgrade complete"
                                              if revision > 1 else "Install complete"}}
        old = dict(app.get("status") or {})
        if old.get("conditions", {}).get("Ready", {}).get("status") == cond["status"]:
            status["conditions"]["Ready"]["lastHeartbeatTime"] = old["conditions"]["Ready"].get("lastHeartbeatTime")
            status["conditions"]["ManifestsRetrieved"]["lastHeartbeatTime"] = \
                old["conditions"]["Ready"].get("lastHeartbeatTime")
        self.store.write_status(rt, app["metadata"]["namespace"], app["metadata"]["name"], status)


def _ident(obj: dict) -> tuple:
    m = obj["metadata"]
    return obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"]
