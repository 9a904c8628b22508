"""KKP's CNI version table, read from the shared data file (one place for a new KKP release).

The lab reads the YAML itself and never imports the product's Python: admission in the lab
must be an independent implementation of KKP's rules.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parents[2] / "include" / "kkp_migration" / "data"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


def parse(version: str) -> tuple[int, int, int] | None:
    """`v3.31` -> (3, 31, 0), `1.19.4` -> (1, 19, 4); None when it is not a version."""
    m = _VERSION.match(str(version or ""))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@functools.lru_cache(maxsize=None)
def data(name: str):
    return yaml.safe_load((DATA_DIR / name).read_text())


def _table(cni_type: str) -> dict:
    return data("cni_versions.yaml")["cni"].get(cni_type) or {}


def supported(cni_type: str) -> list[str]:
    """Versions offered for new clusters (and by `GET /api/v2/cni/{type}/versions`)."""
    return [str(v) for v in _table(cni_type).get("supported") or []]


def deprecated(cni_type: str) -> list[str]:
    return [str(v) for v in _table(cni_type).get("deprecated") or []]


def allowed(cni_type: str) -> list[str]:
    """Versions the admission accepts: supported plus deprecated."""
    return supported(cni_type) + deprecated(cni_type)


def default(cni_type: str) -> str:
    return str(_table(cni_type).get("default") or "")


def is_application(cni_type: str, version: str) -> bool:
    """Cilium from 1.13 on is a KKP Application (ApplicationInstallation); everything else an addon."""
    table = _table(cni_type)
    parsed = parse(version)
    return (table.get("managed_by") == "application" and parsed is not None
            and not str(version).startswith("v") and parsed >= parse(table["application_min_version"]))


def within_one_minor(old: str, new: str) -> bool:
    """KKP's rule for a version change of the same CNI without `unsafe-cni-upgrade`: same major,
    minor at most one apart (a patch-only change is taken as allowed: kkp-facts.md only forbids
    minor jumps of more than one)."""
    a, b = parse(old), parse(new)
    return a is not None and b is not None and a[0] == b[0] and abs(a[1] - b[1]) <= 1


def satisfies(version: str, constraint: str) -> bool:
    """A Masterminds-style constraint of space-separated terms (`>= 1.23`, `< 3.22`, `= 3.22`)."""
    parsed = parse(version)
    if parsed is None:
        return False
    tokens = constraint.replace(",", " ").split()
    ops = {">=": parsed.__ge__, "<=": parsed.__le__, ">": parsed.__gt__, "<": parsed.__lt__, "=": parsed.__eq__}
    i = 0
    while i < len(tokens):
        op, bound = (tokens[i], tokens[i + 1]) if tokens[i] in ops else ("=", tokens[i])
        i += 2 if tokens[i] in ops else 1
        if not ops[op](parse(bound.split("-")[0])):
            return False
    return True


def transition_allowed(cni_type: str, kube_version: str, old: str, new: str) -> bool:
    """KKP's explicitly allowed version changes (allowedCNIVersionTransitions) besides one minor step."""
    for t in (data("cni_versions.yaml").get("allowed_transitions") or {}).get(cni_type) or []:
        if (satisfies(kube_version, t.get("kubernetes", ">= 0")) and satisfies(old, t["old"])
                and satisfies(new, t["new"])):
            return True
    return False
