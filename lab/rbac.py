"""Kubernetes RBAC for the lab's API servers, decided from the Roles and bindings in each cluster's
own store.

The admin token of a lab cluster may do everything (as before). A token issued for any other user
(`Cluster.issue_token`, e.g. a ServiceAccount) may do exactly what the ClusterRoles and Roles bound
to it allow, as Kubernetes' RBAC authorizer decides it: so the project's least-privilege manifests
(deploy/rbac/) are tested by applying them with `kubectl apply` and running the migration with the
ServiceAccount's token, and a request outside them gets the API server's own 403.

Discovery (/api, /apis, /version, /openapi) needs no rule, as `system:discovery` grants it to every
authenticated user. Rules with `nonResourceURLs` and aggregated ClusterRoles are not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from .apiserver.errors import ApiError
from .apiserver.store import RBAC_GROUP, Store

SA_PREFIX = "system:serviceaccount:"

RuleId = tuple[str, str, str, int]     # (kind, namespace or "", role name, index in its rules)


@dataclass(frozen=True)
class Attributes:
    """What the authorizer is asked: Kubernetes' authorizer.Attributes of a resource request."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None           # for list and watch: the name a `metadata.name=` field selector pins

    @property
    def combined(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def forbidden(self) -> ApiError:
        """The API server's 403, word for word (responsewriters.Forbidden + errors.NewForbidden)."""
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        reason = (f'User "{self.user}" cannot {self.verb} resource "{self.combined}" in API group '
                  f'"{self.group}" {where}')
        subject = f'{qualified} "{self.name}"' if self.name else qualified
        details = {"kind": self.resource, **({"group": self.group} if self.group else {}),
                   **({"name": self.name} if self.name else {})}
        return ApiError(403, f"{subject} is forbidden: {reason}", "Forbidden", details)


def groups_of(user: str) -> set[str]:
    """The groups Kubernetes puts a user in: a ServiceAccount's, and system:authenticated."""
    groups = {"system:authenticated"}
    if user.startswith(SA_PREFIX):
        namespace = user[len(SA_PREFIX):].split(":", 1)[0]
        groups |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    return groups


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def _subject_matches(subject: dict, user: str, groups: set[str]) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return user == service_account_user(subject.get("namespace") or "", name)
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups
    return False


def _rule_allows(rule: dict, attrs: Attributes) -> bool:
    """rbac/v1 helpers' VerbMatches, APIGroupMatches, ResourceMatches and ResourceNameMatches."""
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if not ("*" in verbs or attrs.verb in verbs) or not ("*" in groups or attrs.group in groups):
        return False
    resources = rule.get("resources") or []
    if not ("*" in resources or attrs.combined in resources
            or (attrs.subresource and f"*/{attrs.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.name is not None and attrs.name in names)


def _bound_roles(store: Store, attrs: Attributes):
    """(role kind, role namespace, role name) of every binding that names the user and applies
    where the request goes: ClusterRoleBindings everywhere, RoleBindings in their namespace only."""
    groups = groups_of(attrs.user)
    bindings = [(b, "") for b in store.items(store.rtype(RBAC_GROUP, "clusterrolebindings"))]
    if attrs.namespace:
        in_namespace = store.items(store.rtype(RBAC_GROUP, "rolebindings"), attrs.namespace)
        bindings += [(b, attrs.namespace) for b in in_namespace]
    for binding, namespace in bindings:
        if any(_subject_matches(s, attrs.user, groups) for s in binding.get("subjects") or []):
            ref = binding.get("roleRef") or {}
            kind = ref.get("kind")
            yield kind, namespace if kind == "Role" else "", ref.get("name")


def matching_rules(store: Store, attrs: Attributes) -> tuple[RuleId, ...]:
    """Every rule that allows the request (all of them, not the first: a test of least privilege
    asks which rule a request needed, and whether another would have allowed it too)."""
    found: set[RuleId] = set()
    for kind, namespace, name in _bound_roles(store, attrs):
        plural = "roles" if kind == "Role" else "clusterroles"
        role = store.try_get(store.rtype(RBAC_GROUP, plural), namespace or None, name)
        for index, rule in enumerate((role or {}).get("rules") or []):
            if _rule_allows(rule, attrs):
                found.add((kind, namespace, name, index))
    return tuple(sorted(found))
