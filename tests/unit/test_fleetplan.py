"""The fleet plan: validation messages, waves, and the conf each migration DAG takes."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

from kkp_migration.fleetplan import PlanError, load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[2]
WINDOW = {"days": ["sat"], "start": "02:00", "duration": "3h", "timezone": "Europe/Berlin"}


def plan(*entries, **top):
    return {"clusters": list(entries), **top}


def entry(cluster_id="abcde12345", wave=0, **changes):
    base = {"id": cluster_id, "project": "prj4x8n2kd", "access": "seed", "wave": wave, "window": dict(WINDOW),
            "migration": {"type": "canal_to_cilium", "cilium_version": "1.19.4"}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def problems_of(document) -> list[str]:
    with pytest.raises(PlanError) as err:
        parse_plan(document, "clusters.yaml")
    return err.value.problems


@pytest.mark.parametrize("document, expected", [
    (plan(entry(colour="blue")), "clusters[0] (abcde12345): unknown key(s) colour; an entry takes"),
    (plan(entry(cluster_id="Payments-1")), "id 'Payments-1' is not a KKP cluster ID"),
    (plan(entry(access="ssh")), "access 'ssh' must be seed or api."),
    (plan(entry(access="api", project="")), "access api needs project (the KKP project ID); add it"),
    (plan(entry(migration={"type": "flannel_to_cilium"})), "migration type 'flannel_to_cilium' is not one of"),
    (plan(entry(migration={"type": "canal_to_cilium", "cilium_version": "1.12.0"})),
     "cilium_version '1.12.0' is not a cilium version KKP supports for canal_to_cilium; use one of 1.17.16"),
    (plan(entry(migration={"type": "canal_to_cilium", "cilium_version": 1.19})), "read by YAML as a number; quote it"),
    (plan(entry(migration={"type": "cilium_to_canal"})), "migration cilium_to_canal needs canal_version; add it."),
    (plan(entry(migration={"type": "proxy_mode", "proxy_mode": "nftables"})),
     "proxy_mode 'nftables' must be one of ipvs, iptables, ebpf."),
    (plan(entry(migration={"type": "proxy_mode", "proxy_mode": "ipvs", "cilium_version": "1.19.4"})),
     "migration proxy_mode does not take cilium_version"),
    (plan(entry(wave=-1)), "wave -1 must be a whole number >= 0 (0 is the canary wave)."),
    (plan(entry(wave="first")), "wave 'first' must be a whole number"),
    (plan(entry(), entry()), "clusters[1] (abcde12345): the same cluster id is also clusters[0]"),
    (plan(entry(window="weekends")), "window 'weekends' is not defined under `windows:`"),
    (plan(entry(window={**WINDOW, "start": 120})), "window: start 120 was read by YAML as a number"),
    (plan(entry(window=None)), "clusters[0] (abcde12345): missing window; add it."),
    (plan(entry(wave=1)), "no cluster is in wave 0 (the canary)"),
    (plan(), "`clusters:` must be a non-empty list"),
    ({"clusters": [entry()], "defaults": {}}, "unknown top-level key(s) defaults"),
    ({"clusters": [entry()], "outside_window": "later"}, "outside_window 'later' must be wait"),
    (plan(entry(approve_each_step="yes")), "approve_each_step 'yes' must be true or false."),
    (plan(entry(scheduled="weekly")), "scheduled 'weekly' must be true or false."),
    (plan(*(entry(f"wave{n}abcd", n) for n in range(7))), "7 waves (0, 1, 2, 3, 4, 5, 6); the fleet rolls out at most 6"),
])
def test_each_problem_is_one_sentence_naming_the_entry_and_the_fix(document, expected):
    problems = problems_of(document)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_every_problem_is_reported_at_once():
    problems = problems_of(plan(entry(access="ssh"), entry(cluster_id="X"), entry(cluster_id="zzzzz9", wave=-2)))
    assert [p.split(":")[0] for p in problems] == ["clusters[0] (abcde12345)", "clusters[1] (X)", "clusters[2] (zzzzz9)"]


def test_a_bad_named_window_is_reported_once_under_windows():
    problems = problems_of(plan(entry(window="w"), windows={"w": {**WINDOW, "timezone": "Mars/Olympus"}}))
    assert problems == ["windows.w: timezone 'Mars/Olympus' is not an IANA time zone; use a name such as "
                        "Europe/Berlin."]


def test_waves_and_conf():
    fleet = parse_plan(plan(
        entry("canary0001", 0, name="webshop"),
        entry("second002", 2, access="api", migration={"type": "cilium_to_canal", "canal_version": "3.30",
                                                        "restart_machine_deployments": False}),
        entry("first0001", 1, window="w", migration={"type": "proxy_mode", "proxy_mode": "iptables"}),
        entry("first0002", 1, migration={"type": "canal_to_cilium", "cilium_version": "v1.18.10",
                                         "proxy_mode_after": "ebpf"}),
        windows={"w": {"cron": "0 6 * * 6", "duration": "4h", "timezone": "UTC"}}))
    assert [[e.cluster_id for e in wave] for wave in fleet.waves()] == [
        ["canary0001"], ["first0001", "first0002"], ["second002"]]
    by_id = {e.cluster_id: e for e in fleet.entries}
    assert by_id["canary0001"].dag_id == "kkp_cni_canal_to_cilium"
    assert by_id["canary0001"].conf == {"cluster_id": "canary0001", "project_id": "prj4x8n2kd", "access": "seed",
                                        "cilium_version": "1.19.4", "proxy_mode_after": "keep",
                                        "restart_machine_deployments": True,
                                        "maintenance_window": WINDOW, "outside_window": "wait"}
    assert by_id["second002"].dag_id == "kkp_cni_cilium_to_canal"
    assert by_id["second002"].conf == {"cluster_id": "second002", "project_id": "prj4x8n2kd", "access": "api",
                                       "canal_version": "v3.30", "restart_machine_deployments": False,
                                       "maintenance_window": WINDOW, "outside_window": "wait"}
    assert by_id["first0001"].dag_id == "kkp_proxy_mode"
    assert by_id["first0001"].window.summary == "cron '0 6 * * 6' UTC for 4h"
    assert by_id["first0002"].conf["cilium_version"] == "1.18.10"


def _dag_params(dag_file: str) -> tuple[str, ...]:
    """PARAMS keys of a DAG file, loaded as the DAG processor would (needs an Airflow home)."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kkp-airflow-unit-"))
    spec = importlib.util.spec_from_file_location(f"plan_check_{Path(dag_file).stem}", ROOT / "dags" / dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.PARAMS)


def test_the_example_plan_loads_and_each_conf_passes_its_dags_own_check():
    from kkp_migration.airflow.params import check_conf

    fleet = load_plan(ROOT / "include" / "config" / "clusters.yaml")
    assert [len(w) for w in fleet.waves()] == [1, 2]
    files = {"kkp_cni_canal_to_cilium": "kkp_cni_canal_to_cilium.py",
             "kkp_cni_cilium_to_canal": "kkp_cni_cilium_to_canal.py", "kkp_proxy_mode": "kkp_proxy_mode.py"}
    sample = parse_plan(plan(entry("other0001", migration={"type": "cilium_to_canal",
                                                          "canal_version": "v3.31"}))).entries
    for item in fleet.entries + sample:
        check_conf(item.conf, _dag_params(files[item.dag_id]))


def test_load_plan_reports_yaml_syntax_and_missing_files(tmp_path):
    broken = tmp_path / "clusters.yaml"
    broken.write_text("clusters:\n  - id: abcde12345\n    wave: [0\n")
    with pytest.raises(PlanError, match=r"not valid YAML at line \d+, column \d+"):
        load_plan(broken)
    with pytest.raises(PlanError, match="cannot read the plan"):
        load_plan(tmp_path / "missing.yaml")
