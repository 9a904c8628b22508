"""One simulated API server (the seed or a user cluster): its store, tokens, faults and counters."""

from __future__ import annotations

import secrets
from collections import Counter

from . import rbac
from .apiserver.resources import ResourceType
from .apiserver.store import Store
from .clock import Clock
from .faults import Faults


class Cluster:
    def __init__(self, name: str, clock: Clock, kube_version: str = "1.33.4"):
        self.name = name
        self.clock = clock
        self.store = Store(name, clock)
        self.kube_version = kube_version
        self.admin_token = secrets.token_urlsafe(24)
        self.tokens: dict[str, str] = {self.admin_token: "admin"}   # token -> user; the admin may do anything
        self.faults = Faults()
        self.requests: Counter = Counter()  # (verb, resource) -> count, for the API-cost benchmark
        self.grants: Counter = Counter()    # (user, verb, group, resource, rule ids) -> count, see authorize()
        self.pdb_violations: list[str] = []  # pods deleted (not evicted) although a budget forbade it
        self.base_url = ""
        self.ca_data = ""                   # base64 PEM of the lab CA, for kubeconfigs

    @property
    def server_url(self) -> str:
        return f"{self.base_url}/k8s/{self.name}"

    def authenticate(self, header: str | None) -> str | None:
        if self.faults.reject_token or not header or not header.startswith("Bearer "):
            return None
        return self.tokens.get(header[len("Bearer "):].strip())

    def issue_token(self, user: str) -> str:
        """A new bearer token for `user` (`rbac.service_account_user(ns, name)` for a ServiceAccount,
        as `kubectl create token` makes one); what it may do is what the RBAC objects in this
        cluster's store grant that user."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = user
        return token

    def authorize(self, attrs: rbac.Attributes) -> None:
        """Raise the API server's 403 unless the admin asks or an RBAC rule allows the request. Each
        allowed request is counted in `grants` with every rule that allowed it, so a test can tell
        which rules were used and which one alone let a request through."""
        if attrs.user == "admin":
            return
        rules = rbac.matching_rules(self.store, attrs)
        if not rules:
            raise attrs.forbidden()
        self.grants[(attrs.user, attrs.verb, attrs.group, attrs.combined, rules)] += 1

    def count(self, verb: str, rt: ResourceType, sub: str | None) -> None:
        self.requests[(verb, f"{rt.plural}/{sub}" if sub else rt.plural)] += 1

    def version_info(self) -> dict:
        major, minor, _ = (self.kube_version.split(".") + ["0", "0"])[:3]
        return {"major": major, "minor": minor, "gitVersion": f"v{self.kube_version}",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                "platform": "linux/amd64"}

    def kubeconfig(self, token: str | None = None, user: str = "admin") -> dict:
        """A kubeconfig for this cluster, in the shape KKP's admin-kubeconfig Secret holds."""
        return {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {"server": self.server_url,
                                                          "certificate-authority-data": self.ca_data}}],
            "users": [{"name": f"{user}@{self.name}", "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": f"{user}@{self.name}"}}],
            "current-context": self.name,
            "preferences": {},
        }
