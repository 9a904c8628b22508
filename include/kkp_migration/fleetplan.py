"""The fleet plan: which migration each cluster gets, inside which maintenance window, in which wave.

One YAML file the operator edits (include/config/clusters.yaml in the checkout; see that file for
the format). It is operator data, not package data: it is read by path at run time, so an edit
takes effect without reinstalling. `plan_path()` names the file: $KKP_FLEET_PLAN, else the
checkout's include/config/clusters.yaml.

Validation collects every problem, one sentence each naming the entry and the fix, and raises
them together (PlanError), so one edit-and-check round fixes the whole file. Wave 0 is the
canary: it must exist, and the fleet moves wave by wave. Each entry knows the DAG that migrates
it and the exact conf that DAG takes. Plain Python + PyYAML: no Airflow import.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from . import versions
from .errors import BadInput
from .ids import ID_PATTERN
from .windows import MaintenanceWindow, WindowError

ID_RE = re.compile(ID_PATTERN)
PLAN_ENV = "KKP_FLEET_PLAN"
ACCESS_PATHS = ("seed", "api")
PLAN_KEYS = frozenset({"windows", "clusters", "outside_window"})
ENTRY_KEYS = frozenset({"id", "name", "project", "access", "migration", "window", "wave", "approve_each_step",
                        "scheduled"})
OUTSIDE_WINDOW = ("wait", "stop")
MAX_WAVES = 6   # the fleet DAG has this many wave slots (a canary and five more)
REQUIRED_ENTRY_KEYS = ("id", "migration", "window", "wave")


@dataclass(frozen=True)
class MigrationKind:
    """One migration DAG: its id, the plan keys it takes and their defaults (None = required)."""

    dag_id: str
    options: Mapping[str, Any]


PROXY_MODES = ("ipvs", "iptables", "ebpf")
PROXY_MODES_AFTER = ("keep", "iptables", "ebpf")
MIGRATIONS: Mapping[str, MigrationKind] = MappingProxyType({
    "canal_to_cilium": MigrationKind("kkp_cni_canal_to_cilium", {
        "cilium_version": None, "proxy_mode_after": "keep", "restart_machine_deployments": True}),
    "cilium_to_canal": MigrationKind("kkp_cni_cilium_to_canal", {
        "canal_version": None, "restart_machine_deployments": True}),
    "proxy_mode": MigrationKind("kkp_proxy_mode", {
        "proxy_mode": None, "restart_machine_deployments": True}),
})


class PlanError(BadInput):
    """The plan has problems; `problems` holds one sentence each, the message all of them."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class PlanEntry:
    """One cluster of the plan, validated."""

    cluster_id: str
    project_id: str
    access: str
    migration: str
    options: Mapping[str, Any]
    window: MaintenanceWindow
    wave: int
    name: str = ""
    outside_window: str = "wait"
    approve_each_step: bool = False
    scheduled: bool = False

    @property
    def dag_id(self) -> str:
        """The migration DAG that takes this cluster where the plan says."""
        return MIGRATIONS[self.migration].dag_id

    @property
    def conf(self) -> dict[str, Any]:
        """The run conf of `dag_id` for this cluster: every migration option spelled out, and its window."""
        return {"cluster_id": self.cluster_id, "project_id": self.project_id, "access": self.access,
                **self.options, "maintenance_window": self.window.to_spec(), "outside_window": self.outside_window}


@dataclass(frozen=True)
class FleetPlan:
    """The validated plan, entries in file order."""

    entries: tuple[PlanEntry, ...]
    source: str = ""

    def waves(self) -> list[list[PlanEntry]]:
        """Entries grouped by wave, lowest (the canary, 0) first; file order inside a wave."""
        numbers = sorted({e.wave for e in self.entries})
        return [[e for e in self.entries if e.wave == n] for n in numbers]


def plan_path() -> Path:
    """$KKP_FLEET_PLAN, else include/config/clusters.yaml next to this package in the checkout."""
    return Path(os.environ.get(PLAN_ENV) or Path(__file__).resolve().parents[1] / "config" / "clusters.yaml")


def load_plan(path: str | os.PathLike | None = None) -> FleetPlan:
    """Read and validate the plan file (default: plan_path()); raises PlanError listing every problem."""
    path = Path(path) if path is not None else plan_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(str(path), [f"cannot read the plan ({exc.strerror}); create it or set {PLAN_ENV}."]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanError(str(path), [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the syntax there."]) \
            from None
    return parse_plan(data, str(path))


def parse_plan(data: Any, source: str = "plan") -> FleetPlan:
    """Validate an already-parsed plan document."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise PlanError(source, ["the plan must be a mapping with a `clusters:` list (and optional `windows:`)."])
    unknown = sorted(map(str, set(data) - PLAN_KEYS))
    if unknown:
        problems.append(f"unknown top-level key(s) {', '.join(unknown)}; the plan takes clusters and windows.")
    named = _named_windows(data.get("windows") or {}, problems)
    outside = data.get("outside_window", "wait")
    if outside not in OUTSIDE_WINDOW:
        problems.append(f"outside_window {outside!r} must be wait (a run waits for its cluster's next window) or "
                        "stop (it stops with a message).")
    clusters = data.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        problems.append("`clusters:` must be a non-empty list of cluster entries.")
        clusters = []
    entries = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(clusters):
        entry = _entry(index, raw, named, problems, outside)
        if entry is None:
            continue
        if entry.cluster_id in seen:
            problems.append(f"clusters[{index}] ({entry.cluster_id}): the same cluster id is also "
                            f"clusters[{seen[entry.cluster_id]}]; give each cluster one entry.")
            continue
        seen[entry.cluster_id] = index
        entries.append(entry)
    if entries and not problems and min(e.wave for e in entries) != 0:
        problems.append("no cluster is in wave 0 (the canary); put one or a few clusters in wave 0 so a "
                        "problem shows on them before the rest of the fleet.")
    waves = sorted({e.wave for e in entries})
    if len(waves) > MAX_WAVES:
        problems.append(f"{len(waves)} waves ({', '.join(map(str, waves))}); the fleet rolls out at most {MAX_WAVES}: "
                        "put more clusters in each wave.")
    if problems:
        raise PlanError(source, problems)
    return FleetPlan(tuple(entries), source)


def _named_windows(raw: Any, problems: list[str]) -> dict[str, MaintenanceWindow | None]:
    """name -> window (None when invalid: entries using it then get no second error)."""
    if not isinstance(raw, Mapping):
        problems.append("`windows:` must map a window name to its spec.")
        return {}
    named: dict[str, MaintenanceWindow | None] = {}
    for name, spec in raw.items():
        try:
            named[str(name)] = MaintenanceWindow.from_spec(spec)
        except WindowError as exc:
            problems.append(f"windows.{name}: {exc}")
            named[str(name)] = None
    return named


def _entry(index: int, raw: Any, named: Mapping[str, MaintenanceWindow | None],
           problems: list[str], outside_window: str) -> PlanEntry | None:
    """One validated entry, or None after adding its problems."""
    if not isinstance(raw, Mapping):
        problems.append(f"clusters[{index}]: an entry is a mapping with {', '.join(REQUIRED_ENTRY_KEYS)}; "
                        f"got {raw!r}.")
        return None
    cluster_id = raw.get("id")
    where = f"clusters[{index}] ({cluster_id})" if cluster_id else f"clusters[{index}]"
    before = len(problems)

    def problem(text: str) -> None:
        problems.append(f"{where}: {text}")

    unknown = sorted(map(str, set(raw) - ENTRY_KEYS))
    if unknown:
        problem(f"unknown key(s) {', '.join(unknown)}; an entry takes {', '.join(sorted(ENTRY_KEYS))}.")
    missing = [k for k in REQUIRED_ENTRY_KEYS if k not in raw]
    if missing:
        problem(f"missing {', '.join(missing)}; add {'it' if len(missing) == 1 else 'them'}.")
    if cluster_id is not None and not (isinstance(cluster_id, str) and ID_RE.match(cluster_id)):
        problem(f"id {cluster_id!r} is not a KKP cluster ID (5-63 lowercase letters and digits, e.g. "
                "x9k2mp7qzt); copy it from the cluster's page in KKP, not its display name.")
    project = raw.get("project") or ""
    if project and not (isinstance(project, str) and ID_RE.match(project)):
        problem(f"project {project!r} is not a KKP project ID (5-63 lowercase letters and digits).")
    access = raw.get("access", "seed")
    if access not in ACCESS_PATHS:
        problem(f"access {access!r} must be seed or api.")
    elif access == "api" and not project:
        problem("access api needs project (the KKP project ID); add it, or use access: seed.")
    wave = raw.get("wave")
    if "wave" in raw and (not isinstance(wave, int) or isinstance(wave, bool) or wave < 0):
        problem(f"wave {wave!r} must be a whole number >= 0 (0 is the canary wave).")
    each_step, scheduled = raw.get("approve_each_step", False), raw.get("scheduled", False)
    for key, value in (("approve_each_step", each_step), ("scheduled", scheduled)):
        if not isinstance(value, bool):
            problem(f"{key} {value!r} must be true or false.")
    window = _window(raw.get("window"), named, problem) if "window" in raw else None
    migration = _migration(raw.get("migration"), problem) if "migration" in raw else None
    if len(problems) > before:
        return None
    kind, options = migration
    return PlanEntry(cluster_id=cluster_id, project_id=project, access=access, migration=kind,
                     options=options, window=window, wave=wave, name=str(raw.get("name") or ""),
                     outside_window=outside_window, approve_each_step=each_step, scheduled=scheduled)


def _window(raw: Any, named: Mapping[str, MaintenanceWindow | None], problem) -> MaintenanceWindow | None:
    if isinstance(raw, str):
        if raw not in named:
            problem(f"window {raw!r} is not defined under `windows:`; define it there or write the window inline "
                    f"({', '.join(sorted(named)) or 'no named windows yet'}).")
            return None
        return named[raw]  # None when invalid: already reported under windows.
    try:
        return MaintenanceWindow.from_spec(raw)
    except WindowError as exc:
        problem(f"window: {exc}")
        return None


def _migration(raw: Any, problem) -> tuple[str, dict[str, Any]] | None:
    """(type, options with defaults filled in) or None after reporting."""
    if not isinstance(raw, Mapping) or raw.get("type") not in MIGRATIONS:
        kind = raw.get("type") if isinstance(raw, Mapping) else raw
        problem(f"migration type {kind!r} is not one of {', '.join(MIGRATIONS)}; write e.g. "
                "migration: {type: canal_to_cilium, cilium_version: \"1.19.4\"}.")
        return None
    kind = raw["type"]
    spec = MIGRATIONS[kind]
    unknown = sorted(map(str, set(raw) - set(spec.options) - {"type"}))
    if unknown:
        problem(f"migration {kind} does not take {', '.join(unknown)}; it takes {', '.join(spec.options)}.")
        return None
    options = {}
    for key, default in spec.options.items():
        if key not in raw and default is None:
            problem(f"migration {kind} needs {key}; add it.")
            return None
        value = raw.get(key, default)
        checked = _option(kind, key, value, problem)
        if checked is None:
            return None
        options[key] = checked
    return kind, options


def _option(kind: str, key: str, value: Any, problem) -> Any:
    """The option in the spelling the DAG takes, or None after reporting."""
    if key == "restart_machine_deployments":
        if not isinstance(value, bool):
            problem(f"restart_machine_deployments {value!r} must be true or false.")
            return None
        return value
    if key in ("proxy_mode", "proxy_mode_after"):
        allowed = PROXY_MODES if key == "proxy_mode" else PROXY_MODES_AFTER
        if value not in allowed:
            problem(f"{key} {value!r} must be one of {', '.join(allowed)}.")
            return None
        return value
    cni = "cilium" if key == "cilium_version" else "canal"
    allowed = versions.supported(cni) if cni == "cilium" else versions.accepted(cni)
    if isinstance(value, float):
        problem(f"{key} {value!r} was read by YAML as a number; quote it, e.g. {key}: \"{allowed[-1]}\".")
        return None
    try:
        spelled = versions.normalize_version(cni, str(value))
    except versions.VersionError:
        spelled = None
    if spelled not in allowed:
        problem(f"{key} {value!r} is not a {cni} version KKP {'supports' if cni == 'cilium' else 'accepts'} "
                f"for {kind}; use one of {', '.join(allowed)}.")
        return None
    return spelled
