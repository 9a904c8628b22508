"""KKP's CNI version rules and the objects each CNI version deploys, loaded from package data.

The facts live in `kkp_migration/data/*.yaml` (read from KKP's source, see docs/kkp-sources.md);
this module only applies them. It lets a run refuse, before it touches a cluster, a change that
KKP's admission webhook would refuse, and tells the clean-up steps which objects belong to a CNI.
No Airflow import: plain stdlib + PyYAML, so it is cheap to import and to test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

import yaml

CANAL = "canal"
CILIUM = "cilium"
NONE = "none"

UNSAFE_CNI_MIGRATION_LABEL = "unsafe-cni-migration"
UNSAFE_CNI_UPGRADE_LABEL = "unsafe-cni-upgrade"

_DATA_PACKAGE = "kkp_migration.data"
_CRD_API_VERSION = "apiextensions.k8s.io/v1"
_CRD_KIND = "CustomResourceDefinition"

# What KKP's semver library (Masterminds NewVersion) accepts: optional "v", minor and patch optional.
_VERSION_RE = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_CONSTRAINT_RE = re.compile(r"^\s*(>=|<=|!=|=|>|<)?\s*(\S+)\s*$")


class VersionError(ValueError):
    """A CNI type or version this module cannot parse or has no verified data for."""


# --------------------------------------------------------------------------------------------
# Versions


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed CNI version; ordering follows semver (a pre-release sorts before its release)."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def _key(self) -> tuple:
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease)

    def __lt__(self, other: "Version") -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return f"{text}-{self.prerelease}" if self.prerelease else text


def parse_version(text: str) -> Version:
    """Parse `v3.31`, `3.31`, `1.19.4`, `v1.11` the way KKP does (missing parts are 0)."""
    match = _VERSION_RE.match(str(text).strip()) if text is not None else None
    if not match:
        raise VersionError(f"invalid semantic version: {text!r}")
    major, minor, patch, pre, _meta = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), pre or "")


def normalize_version(cni_type: str, version: str) -> str:
    """Spell a version the way KKP stores it: canal `vX.Y`, cilium `X.Y.Z` (>= 1.13) or `vX.Y`.

    KKP compares versions as exact strings, so `3.31` or `v1.19.4` would be refused; this turns
    what a person typed into KKP's spelling. It does not check that KKP accepts the result.
    """
    if cni_type == NONE:
        if version not in ("", None):
            raise VersionError(f'CNI type "none" has no version, got {version!r}')
        return ""
    parsed = parse_version(version)
    if cni_type == CANAL:
        if parsed.patch or parsed.prerelease:
            raise VersionError(f"canal versions are vX.Y, got {version!r}")
        return f"v{parsed.major}.{parsed.minor}"
    if cni_type == CILIUM:
        if (parsed.major, parsed.minor) < (1, 13):
            if parsed.patch or parsed.prerelease:
                raise VersionError(f"cilium versions before 1.13 are vX.Y, got {version!r}")
            return f"v{parsed.major}.{parsed.minor}"
        return str(parsed)
    raise VersionError(f"unknown CNI type {cni_type!r}")


def satisfies(version: str | Version, constraint: str) -> bool:
    """Check one Masterminds-style constraint such as `>= 1.23` (empty constraint: always true).

    As in KKP's library, a pre-release version only satisfies a constraint that names one.
    """
    if not constraint or not constraint.strip():
        return True
    match = _CONSTRAINT_RE.match(constraint)
    if not match:
        raise VersionError(f"unsupported version constraint {constraint!r}")
    op, bound_text = match.group(1) or "=", match.group(2)
    value = version if isinstance(version, Version) else parse_version(version)
    bound = parse_version(bound_text)
    if value.prerelease and not bound.prerelease:
        return False
    return {
        "=": value == bound, "!=": value != bound, ">": value > bound,
        ">=": value >= bound, "<": value < bound, "<=": value <= bound,
    }[op]


def _version_order(text: str) -> tuple:
    """Sort key putting unparsable strings ("" for type none) first."""
    try:
        return (1, parse_version(text))
    except VersionError:
        return (0, text)


def _quote(text: str) -> str:
    """Quote like Go's %q for the plain strings KKP puts in its messages."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# The version table (cni_versions.yaml)


@lru_cache(maxsize=None)
def _load_yaml(name: str) -> Any:
    with resources.files(_DATA_PACKAGE).joinpath(name).open("r", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


@dataclass(frozen=True)
class Transition:
    """An extra version change KKP allows although it is more than one minor step."""

    kubernetes: str
    old: str
    new: str


@dataclass(frozen=True)
class CniTable:
    """The versions KKP offers and accepts for one CNI type."""

    cni_type: str
    default: str
    supported: tuple[str, ...]
    deprecated: tuple[str, ...]
    managed_by: str
    application_min_version: str | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        """Supported + deprecated, in version order: everything KKP's webhook lets a cluster have."""
        return tuple(sorted(set(self.supported) | set(self.deprecated), key=_version_order))


@dataclass(frozen=True)
class CniVersions:
    """KKP's CNI version table and update rules, as read from cni_versions.yaml."""

    tables: Mapping[str, CniTable]
    transitions: Mapping[str, tuple[Transition, ...]]
    kkp_release: str
    kkp_commit: str
    kubernetes_constraints: tuple[Mapping[str, Any], ...]

    def types(self) -> tuple[str, ...]:
        """The CNI types KKP knows (canal, cilium, none)."""
        return tuple(self.tables)

    def table(self, cni_type: str) -> CniTable:
        try:
            return self.tables[cni_type]
        except KeyError:
            raise VersionError(
                f"CNI Plugin type {_quote(cni_type)} not supported. Supported types {sorted(self.tables)}"
            ) from None

    def supported(self, cni_type: str) -> tuple[str, ...]:
        """Versions KKP offers in its UI for new clusters and upgrades."""
        return self.table(cni_type).supported

    def default(self, cni_type: str) -> str:
        """The version KKP picks when none is given."""
        return self.table(cni_type).default

    def deprecated(self, cni_type: str) -> tuple[str, ...]:
        """Versions KKP no longer offers but still accepts on update."""
        return self.table(cni_type).deprecated

    def accepted(self, cni_type: str) -> tuple[str, ...]:
        """Supported + deprecated: what the admission webhook accepts for this type."""
        return self.table(cni_type).accepted

    def kubernetes_problems(self, cni_type: str, version: str, k8s_version: str) -> list[str]:
        """Why this CNI version cannot run on a cluster of this Kubernetes version ([] = it can),
        from `kubernetes_constraints`: KKP accepts such a change, but the CNI would never deploy."""
        problems = []
        for rule in self.kubernetes_constraints:
            versions = rule.get("versions")
            applies = version in versions if isinstance(versions, (list, tuple)) else \
                _satisfies_quiet(version, str(versions))
            if rule.get("cni") == cni_type and applies and not _satisfies_quiet(k8s_version, rule["kubernetes"]):
                problems.append(f"{cni_type} {version} needs Kubernetes {rule['kubernetes']} ({rule['why'].strip()})")
        return problems

    def is_application_managed(self, version: str, cni_type: str = CILIUM) -> bool:
        """True when KKP runs this CNI version as an ApplicationInstallation, not as an addon.

        Mirrors KKP's IsManagedByAppInfra: only cilium, only versions that parse as semver and
        are >= application_min_version (1.13.0); v1.11 and v1.12 were addons.
        """
        table = self.tables.get(cni_type)
        if table is None or not table.application_min_version:
            return False
        try:
            return satisfies(version, f">= {table.application_min_version}")
        except VersionError:
            return False

    def check_upgrade(self, cni_type: str, old_version: str, new_version: str,
                      labels: Mapping[str, str] | None = None, *, old_type: str | None = None,
                      k8s_version: str | None = None) -> list[str]:
        """The errors KKP's webhook would give for this spec.cniPlugin change ([] = allowed).

        `cni_type` is the new type; `old_type` defaults to it (a version change only). `labels`
        are the labels of the updated Cluster (the new object). Reproduces, from
        pkg/validation/cluster.go: the new type/version must be accepted (ValidateClusterSpec runs
        on every update); a type change needs the unsafe-cni-migration label and then skips the
        version-step rule; for the same type a major change or a jump of more than one minor needs
        unsafe-cni-upgrade unless an allowed transition matches (its Kubernetes constraint needs
        `k8s_version`; without one it is taken as not met). Messages carry KKP's field path and
        wording as the webhook prints them after `admission webhook "clusters.kubermatic.io"
        denied the request: `.
        """
        labels = labels or {}
        old_type = cni_type if old_type is None else old_type
        errors: list[str] = []

        if cni_type not in self.tables:
            errors.append(
                f"spec.cniPlugin.type: Unsupported value: {_quote(cni_type)}: supported values: "
                + ", ".join(_quote(t) for t in sorted(self.tables))
            )
        elif new_version not in self.accepted(cni_type):
            errors.append(
                f"spec.cniPlugin.version: Unsupported value: {_quote(new_version)}: supported values: "
                + ", ".join(_quote(v) for v in sorted(self.accepted(cni_type)))
            )

        if cni_type != old_type:
            if UNSAFE_CNI_MIGRATION_LABEL not in labels:
                errors.append(
                    "spec.cniPlugin.type: Forbidden: cannot change CNI plugin type, unless "
                    f"{UNSAFE_CNI_MIGRATION_LABEL} label is present"
                )
            return errors

        if new_version == old_version:
            return errors
        parsed = {}
        for which, text in (("new", new_version), ("old", old_version)):
            try:
                parsed[which] = parse_version(text)
            except VersionError:
                errors.append(
                    f"spec.cniPlugin.version: Invalid value: {_quote(text)}: couldn't parse CNI "
                    f"version `{text}`: invalid semantic version"
                )
                return errors
        new, old = parsed["new"], parsed["old"]
        major_change = new.major != old.major
        big_minor_change = new.minor != old.minor and abs(new.minor - old.minor) != 1
        if not (major_change or big_minor_change):
            return errors
        for transition in self.transitions.get(cni_type, ()):
            k8s_ok = (not transition.kubernetes) or (
                k8s_version is not None and _satisfies_quiet(k8s_version, transition.kubernetes)
            )
            if k8s_ok and satisfies(old, transition.old) and satisfies(new, transition.new):
                return errors
        if UNSAFE_CNI_UPGRADE_LABEL not in labels:
            errors.append(
                f"spec.cniPlugin.version: Forbidden: cannot upgrade CNI from {old_version} to "
                f"{new_version}, only one minor version difference is allowed unless "
                f"{UNSAFE_CNI_UPGRADE_LABEL} label is present"
            )
        return errors


def _satisfies_quiet(version: str, constraint: str) -> bool:
    try:
        return satisfies(version, constraint)
    except VersionError:
        return False


def _str_list(values: Any) -> tuple[str, ...]:
    out = []
    for value in values or ():
        if isinstance(value, float):  # an unquoted 1.20 in YAML would silently become "1.2"
            raise VersionError(f"version {value!r} in package data must be quoted")
        out.append("" if value is None else str(value))
    return tuple(out)


@lru_cache(maxsize=None)
def load_cni_versions() -> CniVersions:
    """Read cni_versions.yaml once; every function below answers from it."""
    raw = _load_yaml("cni_versions.yaml")
    tables = {}
    for cni_type, entry in raw["cni"].items():
        minimum = entry.get("application_min_version")
        tables[cni_type] = CniTable(
            cni_type=cni_type,
            default="" if entry.get("default") is None else str(entry["default"]),
            supported=_str_list(entry.get("supported")),
            deprecated=_str_list(entry.get("deprecated")),
            managed_by=str(entry.get("managed_by", "")),
            application_min_version=str(minimum) if minimum else None,
        )
    transitions = {
        cni_type: tuple(Transition(str(t.get("kubernetes", "")), str(t.get("old", "")), str(t.get("new", "")))
                        for t in items or ())
        for cni_type, items in (raw.get("allowed_transitions") or {}).items()
    }
    return CniVersions(
        tables=MappingProxyType(tables),
        transitions=MappingProxyType(transitions),
        kkp_release=str(raw["kkp"]["release"]),
        kkp_commit=str(raw["kkp"]["commit"]),
        kubernetes_constraints=tuple(MappingProxyType(c) for c in raw.get("kubernetes_constraints") or ()),
    )


def supported(cni_type: str) -> tuple[str, ...]:
    """Versions KKP offers for `cni_type`."""
    return load_cni_versions().supported(cni_type)


def default(cni_type: str) -> str:
    """KKP's default version for `cni_type`."""
    return load_cni_versions().default(cni_type)


def deprecated(cni_type: str) -> tuple[str, ...]:
    """Versions KKP still accepts for `cni_type` but no longer offers."""
    return load_cni_versions().deprecated(cni_type)


def accepted(cni_type: str) -> tuple[str, ...]:
    """Supported + deprecated versions of `cni_type`."""
    return load_cni_versions().accepted(cni_type)


def is_application_managed(version: str, cni_type: str = CILIUM) -> bool:
    """True when KKP deploys this (cilium) version as ApplicationInstallation `cilium`."""
    return load_cni_versions().is_application_managed(version, cni_type)


def kubernetes_problems(cni_type: str, version: str, k8s_version: str) -> list[str]:
    """Why `version` of `cni_type` cannot run on Kubernetes `k8s_version` ([] = it can)."""
    return load_cni_versions().kubernetes_problems(cni_type, version, k8s_version)


def check_upgrade(cni_type: str, old_version: str, new_version: str,
                  labels: Mapping[str, str] | None = None, *, old_type: str | None = None,
                  k8s_version: str | None = None) -> list[str]:
    """KKP's admission errors for a spec.cniPlugin change; see CniVersions.check_upgrade."""
    return load_cni_versions().check_upgrade(cni_type, old_version, new_version, labels,
                                             old_type=old_type, k8s_version=k8s_version)


# --------------------------------------------------------------------------------------------
# Objects per CNI version (canal_objects.yaml, cilium_objects.yaml)


@dataclass(frozen=True)
class KubeObject:
    """One object a CNI puts in the user cluster.

    `namespace` None = cluster-scoped. A `name` ending in `*` is a prefix (generated suffix).
    `optional` names the condition under which it exists; `hook` is set for Helm hooks (not
    removed by `helm uninstall`); `shared` marks a CRD that is not the CNI's own (ask first).
    """

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    optional: str | None = None
    hook: str | None = None
    shared: bool = False

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (self.api_version, self.kind, self.name, self.namespace)

    @property
    def is_pattern(self) -> bool:
        return self.name.endswith("*")

    def matches(self, name: str) -> bool:
        """Does a live object's name match this entry (prefix match for `*` names)?"""
        return name.startswith(self.name[:-1]) if self.is_pattern else name == self.name

    def to_dict(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out


def _object(entry: Mapping[str, Any], shared_crds: frozenset[str] = frozenset()) -> KubeObject:
    return KubeObject(
        api_version=str(entry["apiVersion"]), kind=str(entry["kind"]), name=str(entry["name"]),
        namespace=entry.get("namespace"), optional=entry.get("optional"), hook=entry.get("hook"),
        shared=str(entry["name"]) in shared_crds,
    )


def _crd(name: str, shared_crds: frozenset[str] = frozenset()) -> KubeObject:
    return KubeObject(_CRD_API_VERSION, _CRD_KIND, name, shared=name in shared_crds)


def _apply_changes(base: list, changes: Mapping[str, Any] | None, version: Version, key, convert) -> list:
    """base, then each change set whose key version is <= `version`, in version order."""
    items = list(base)
    for since in sorted(changes or {}, key=parse_version):
        if parse_version(since) > version:
            continue
        change = changes[since] or {}
        for field_remove, field_add in (("remove", "add"), ("remove_crds", "add_crds")):
            removed = {key(convert(e)) for e in change.get(field_remove) or ()}
            items = [i for i in items if key(i) not in removed]
            items.extend(convert(e) for e in change.get(field_add) or ())
    return items


def _canal_data() -> Mapping[str, Any]:
    return _load_yaml("canal_objects.yaml")


def _cilium_data() -> Mapping[str, Any]:
    return _load_yaml("cilium_objects.yaml")


def canal_objects(version: str) -> list[KubeObject]:
    """Every object (CRDs included) the KKP canal addon of `version` creates.

    Raises VersionError for a version whose addon was not read (see canal_objects.yaml).
    """
    data = _canal_data()
    name = normalize_version(CANAL, version)
    if name not in _str_list(data["verified"]):
        raise VersionError(f"no verified object list for canal {name}")
    shared = frozenset(data.get("shared_crds") or ())
    base = data["base"]

    def convert(entry):
        return _crd(entry, shared) if isinstance(entry, str) else _object(entry, shared)

    items = [convert(e) for e in base.get("objects") or ()] + [convert(c) for c in base.get("crds") or ()]
    return _apply_changes(items, data.get("changes"), parse_version(name), lambda o: o.key, convert)


def _cilium_section(version: str) -> tuple[str, Mapping[str, Any], str]:
    """('application'|'addon', its data, KKP's spelling) for a cilium version with verified data."""
    data = _cilium_data()
    name = normalize_version(CILIUM, version)
    if is_application_managed(name):
        section = data["application"]
        rng = section["verified"]
        parsed = parse_version(name)
        if (parsed.prerelease or not satisfies(parsed, f">= {rng['min']}") or not satisfies(parsed, f"<= {rng['max']}")
                or name in _str_list(rng.get("never_published"))):
            raise VersionError(f"no verified object list for cilium {name}")
        return "application", section, name
    section = data["addon"]
    if name not in _str_list(section["verified"]):
        raise VersionError(f"no verified object list for cilium {name}")
    return "addon", section, name


def cilium_objects(version: str) -> list[KubeObject]:
    """The objects KKP's Cilium of `version` deploys: the Helm chart (>= 1.13) or the addon.

    Not included: what Cilium creates at run time (cilium_runtime_crds, cilium_runtime_objects)
    and the optional hubble addon (hubble_addon_objects).
    """
    _kind, section, name = _cilium_section(version)
    base = [_object(e) for e in section.get("base") or ()]
    return _apply_changes(base, section.get("changes"), parse_version(name), lambda o: o.key, _object)


def cilium_managed_by(version: str) -> KubeObject:
    """The KKP object that owns Cilium of `version`: ApplicationInstallation `cilium` in the user
    cluster's kube-system (>= 1.13), or Addon `cilium` in the seed namespace
    `cluster-{cluster_id}` (format the namespace with the cluster ID)."""
    _kind, section, _name = _cilium_section(version)
    return _object(section["managed_by"])


def cilium_runtime_crds(version: str) -> list[str]:
    """cilium.io CRDs the Cilium operator of `version` creates itself (not the chart/addon).

    A cluster that ran older Cilium versions may hold more; clean-up should take the whole
    cilium.io group (cilium_crd_group()).
    """
    _kind, _section, name = _cilium_section(version)
    crds = _cilium_data()["runtime"]["crds"]
    return _apply_changes(list(crds["base"]), crds.get("changes"), parse_version(name), lambda c: c, str)


def cilium_crd_group() -> str:
    """The API group of every CRD Cilium creates."""
    return str(_cilium_data()["runtime"]["crd_group"])


def cilium_runtime_objects(version: str) -> list[KubeObject]:
    """Non-CRD objects made at run time for an application-managed Cilium (TLS secrets written by
    the certgen Job, Helm release secrets); [] for the addon versions."""
    kind, _section, _name = _cilium_section(version)
    if kind != "application":
        return []
    return [_object(e) for e in _cilium_data()["runtime"]["objects"]]


def hubble_addon_objects() -> list[KubeObject]:
    """Objects of KKP's optional hubble addon (used with Cilium v1.11/v1.12 only)."""
    return [_object(e) for e in _cilium_data()["addon"]["hubble_addon"]["objects"]]
