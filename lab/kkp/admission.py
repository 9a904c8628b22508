"""KKP's validating webhook for Cluster objects (`clusters.kubermatic.io`), the lab's own implementation.

Rules from kkp-facts.md "Admission rules on Cluster updates"; messages in the shape of Go's
`field.Error` (`<path>: Forbidden: <detail>`), joined as Go's aggregate error joins them.
"""

from __future__ import annotations

import json

from lab.apiserver.errors import ApiError

from . import versions

WEBHOOK = "clusters.kubermatic.io"
UNSAFE_MIGRATION = "unsafe-cni-migration"
UNSAFE_UPGRADE = "unsafe-cni-upgrade"
CNI_TYPES = ("canal", "cilium", "none")
PROXY_MODES = ("ipvs", "iptables", "ebpf", "nftables")
DENIED_CODE = 422   # the lab's choice (the brief's); real KKP answers with a 4xx Status


def _quote(value) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value).lower() if isinstance(value, bool) \
        else str(value)


def forbidden(path: str, detail: str) -> str:
    return f"{path}: Forbidden: {detail}"


def required(path: str, detail: str) -> str:
    return f"{path}: Required value: {detail}"


def invalid(path: str, value, detail: str) -> str:
    return f"{path}: Invalid value: {_quote(value)}: {detail}"


def not_supported(path: str, value, choices) -> str:
    return f"{path}: Unsupported value: {_quote(value)}: supported values: " + ", ".join(_quote(c) for c in choices)


def _network(cluster: dict) -> dict:
    return (cluster.get("spec") or {}).get("clusterNetwork") or {}


def _cni(cluster: dict) -> dict | None:
    return (cluster.get("spec") or {}).get("cniPlugin")


def validate_spec(cluster: dict) -> list[str]:
    """Checks on any Cluster (create and update): CNI type and version, proxy mode and its constraints."""
    errs = []
    cni = _cni(cluster)
    if cni is not None:
        ctype, cversion = cni.get("type"), cni.get("version", "")
        if ctype not in CNI_TYPES:
            errs.append(not_supported("spec.cniPlugin.type", ctype, CNI_TYPES))
        elif ctype != "none" and cversion not in versions.allowed(ctype):
            errs.append(not_supported("spec.cniPlugin.version", cversion, sorted(versions.allowed(ctype))))
    net = _network(cluster)
    mode = net.get("proxyMode")
    if mode not in PROXY_MODES:
        errs.append(not_supported("spec.clusterNetwork.proxyMode", mode, PROXY_MODES))
    if mode == "ebpf" and (cni or {}).get("type") != "cilium":
        errs.append(invalid("spec.clusterNetwork.proxyMode", mode,
                            f"ebpf proxy mode is not valid for {(cni or {}).get('type') or 'none'} CNI"))
    if mode == "ebpf" and net.get("konnectivityEnabled") is False:
        errs.append(invalid("spec.clusterNetwork.proxyMode", mode,
                            "ebpf proxy mode can be used only when Konnectivity is enabled"))
    if net.get("dnsDomain", "cluster.local") != "cluster.local":
        errs.append(invalid("spec.clusterNetwork.dnsDomain", net.get("dnsDomain"),
                            "dnsDomain must be 'cluster.local'"))
    return errs


def _immutable(path: str, new, old) -> list[str]:
    return [] if new == old else [invalid(path, new, "field is immutable")]


def validate_update(new: dict, old: dict) -> list[str]:
    """The update rules: CNI migration and upgrade labels, immutable network fields, Konnectivity."""
    errs = validate_spec(new)
    labels = new["metadata"].get("labels") or {}
    net, old_net = _network(new), _network(old)
    for field in ("ipFamily", "dnsDomain"):
        if old_net.get(field):
            errs += _immutable(f"spec.clusterNetwork.{field}", net.get(field), old_net.get(field))
    for field in ("pods", "services"):
        if (old_net.get(field) or {}).get("cidrBlocks"):
            errs += _immutable(f"spec.clusterNetwork.{field}.cidrBlocks", (net.get(field) or {}).get("cidrBlocks"),
                               old_net[field]["cidrBlocks"])
    if old_net.get("proxyMode") and UNSAFE_MIGRATION not in labels:
        errs += _immutable("spec.clusterNetwork.proxyMode", net.get("proxyMode"), old_net["proxyMode"])
    if net.get("konnectivityEnabled") is False and old_net.get("konnectivityEnabled") is not False:
        errs.append(forbidden("spec.clusterNetwork.konnectivityEnabled", "Konnectivity can no longer be disabled"))
    cni_err = _cni_update(_cni(new), _cni(old), labels, (new.get("spec") or {}).get("version", ""))
    if cni_err:
        errs.append(cni_err)
    return errs


def _cni_update(new: dict | None, old: dict | None, labels: dict, kube_version: str) -> str | None:
    if old is None:
        return None
    if new is None:
        return required("spec.cniPlugin", "CNI plugin settings cannot be removed")
    if new.get("type") != old.get("type"):
        if UNSAFE_MIGRATION in labels:
            return None
        return forbidden("spec.cniPlugin.type",
                         f"cannot change CNI plugin type, unless {UNSAFE_MIGRATION} label is present")
    new_v, old_v = new.get("version", ""), old.get("version", "")
    if new_v == old_v:
        return None
    for v in (new_v, old_v):
        if versions.parse(v) is None:
            return invalid("spec.cniPlugin.version", v, f"couldn't parse CNI version `{v}`: Invalid Semantic Version")
    if versions.within_one_minor(old_v, new_v) or \
            versions.transition_allowed(new["type"], kube_version, old_v, new_v):
        return None
    if UNSAFE_UPGRADE not in labels:
        return forbidden("spec.cniPlugin.version",
                         f"cannot upgrade CNI from {old_v} to {new_v}, only one minor version difference is "
                         f"allowed unless {UNSAFE_UPGRADE} label is present")
    return None


def denial(errs: list[str]) -> ApiError:
    """The API server's answer to a denied request, as kubectl and the clients see it."""
    detail = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
    return ApiError(DENIED_CODE, f'admission webhook "{WEBHOOK}" denied the request: {detail}', "Invalid",
                    {"group": "kubermatic.k8c.io", "kind": "clusters",
                     "causes": [{"message": e} for e in errs]})


def check(op: str, new: dict | None, old: dict | None) -> None:
    """`store.admit` hook on the seed's clusters resource."""
    if op == "DELETE":
        return
    errs = validate_spec(new) if op == "CREATE" else validate_update(new, old)
    if errs:
        raise denial(errs)
