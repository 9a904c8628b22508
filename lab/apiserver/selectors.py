"""Label and field selectors with the syntax and the refusals of a real API server."""

from __future__ import annotations

import re
from typing import Callable

from .errors import ApiError

Predicate = Callable[[dict], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\((.*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_terms(expr: str) -> list[str]:
    """Split on commas that are not inside parentheses (set-based terms contain commas)."""
    terms, depth, current = [], 0, []
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def parse_label_selector(expr: str | None) -> Predicate:
    """`a=b,c!=d,e in (x,y),f notin (z),g,!h` -> predicate over a labels dict."""
    if not expr or not expr.strip():
        return lambda labels: True
    checks: list[Predicate] = []
    for term in _split_terms(expr):
        if m := _SET_RE.match(term):
            key, op, raw = m.group(1), m.group(3), m.group(4)
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if op == "in":
                checks.append(lambda l, k=key, vs=values: l.get(k) in vs)
            else:
                checks.append(lambda l, k=key, vs=values: l.get(k) not in vs)
        elif m := _CMP_RE.match(term):
            key, op, value = m.group(1), m.group(3), m.group(4)
            if op == "!=":
                checks.append(lambda l, k=key, v=value: l.get(k) != v)
            else:
                checks.append(lambda l, k=key, v=value: k in l and l[k] == v)
        elif m := _EXISTS_RE.match(term):
            neg, key = m.group(1), m.group(2)
            if neg:
                checks.append(lambda l, k=key: k not in l)
            else:
                checks.append(lambda l, k=key: k in l)
        else:
            raise ApiError(400, f"unable to parse requirement: found '{term.strip()}', invalid label selector")
    return lambda labels: all(c(labels) for c in checks)


def selector_from_label_selector(sel: dict | None) -> Predicate:
    """A `metav1.LabelSelector` object (matchLabels / matchExpressions) -> predicate.

    An empty selector matches everything, as for PodDisruptionBudgets in policy/v1.
    """
    if not sel:
        return lambda labels: True
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []

    def pred(labels: dict) -> bool:
        for k, v in match_labels.items():
            if labels.get(k) != v:
                return False
        for e in exprs:
            key, op, values = e["key"], e["operator"], set(e.get("values") or [])
            if op == "In" and labels.get(key) not in values:
                return False
            if op == "NotIn" and key in labels and labels[key] in values:
                return False
            if op == "Exists" and key not in labels:
                return False
            if op == "DoesNotExist" and key in labels:
                return False
        return True

    return pred


def _get_path(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _field_text(value, unset: str) -> str:
    if value is None:
        return unset
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(expr: str | None, supported: dict[str, str]) -> Predicate:
    """Field selectors on the fields this resource supports (field -> text when unset).

    Others are refused with 400, as a real API server does.
    """
    if not expr or not expr.strip():
        return lambda obj: True
    checks: list[Predicate] = []
    for term in expr.split(","):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not m:
            raise ApiError(400, f"invalid selector: '{expr}'; can't understand '{term}'")
        field, op, value = m.groups()
        if field not in supported:
            raise ApiError(400, f'field label not supported: {field}')
        unset = supported[field]
        if op == "!=":
            checks.append(lambda o, f=field, v=value, d=unset: _field_text(_get_path(o, f), d) != v)
        else:
            checks.append(lambda o, f=field, v=value, d=unset: _field_text(_get_path(o, f), d) == v)
    return lambda obj: all(c(obj) for c in checks)


def field_selector_name(expr: str | None) -> str | None:
    """The name a field selector pins (`metadata.name=x`, alone or among other terms), as
    Kubernetes' RequiresExactMatch finds it for the authorizer; None when it pins none."""
    for term in (expr or "").split(","):
        m = re.match(r"^\s*metadata\.name\s*(==|=)\s*(.+?)\s*$", term)
        if m:
            return m.group(2)
    return None
