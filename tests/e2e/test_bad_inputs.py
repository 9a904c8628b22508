"""Forty bad inputs, across the three migration DAGs' params and their connections, sent to a real
`airflow standalone` the way people send them (the REST API the trigger form uses). Each must be
rejected before anything changes: by the form's own validation (the trigger is refused), by the
run's first tasks with one sentence that names the fix, or as a clear no-op. The lab must see no
write at all: no Cluster patch, no lock, nothing in a user cluster.
"""

from __future__ import annotations

import base64
import copy
import time
from dataclasses import dataclass, field

import certifi
import pytest

from tests import figures
from tests.e2e.airflow_rest import AirflowRestError
from tests.e2e.migration_run import register_lab_connections
from tests.lab_state import client_writes

pytestmark = pytest.mark.e2e

CNI, BACK, PROXY = "kkp_cni_canal_to_cilium", "kkp_cni_cilium_to_canal", "kkp_proxy_mode"
SUITE_TIMEOUT = 600
# Runs in flight at once: standalone's SQLite and single API server slow to a crawl with forty.
BATCH = 8
LOCK = "kkp-cni-migration.kubermatic.io/lock"


@dataclass
class Case:
    name: str
    dag_id: str
    conf: dict
    fix: str                      # what the refusal must say (case-insensitive)
    run_id: str = ""
    message: str = field(default="", repr=False)


def cases(kkp_lab) -> list[Case]:
    c = kkp_lab.clusters
    web, pay, ana = c["webshop-canal-iptables"], c["payments-canal-ipvs"], c["analytics-cilium-ebpf"]
    seed = {"cluster_id": web.id, "access": "seed"}
    api = {"cluster_id": web.id, "access": "api", "project_id": web.project_id}
    return [
        # refused by the trigger form's validation: the run never starts
        Case("unsupported Cilium version", CNI, {**seed, "cilium_version": "1.12.0"}, "cilium_version"),
        Case("unsupported Canal version", BACK, {**seed, "cluster_id": ana.id, "canal_version": "v3.19"},
             "canal_version"),
        Case("unknown proxy mode", PROXY, {**seed, "proxy_mode": "nftables"}, "proxy_mode"),
        Case("unknown access path", CNI, {**seed, "access": "ssh"}, "access"),
        Case("no parallelism", CNI, {**seed, "parallelism": 0}, "parallelism"),
        Case("negative budget wait", CNI, {**seed, "pdb_wait_seconds": -5}, "pdb_wait_seconds"),
        Case("zero wait limit", CNI, {**seed, "cni_ready_timeout_minutes": 0}, "cni_ready_timeout_minutes"),
        Case("unknown window policy", CNI, {**seed, "outside_window": "later"}, "outside_window"),
        Case("approvers not a list", CNI, {**seed, "approvers": "alice"}, "approvers"),
        Case("machine restart not a boolean", CNI, {**seed, "restart_machine_deployments": "often"},
             "restart_machine_deployments"),
        # refused by the run's first tasks, before the lock
        Case("empty cluster id", CNI, {**seed, "cluster_id": ""}, "is not a KKP cluster ID"),
        Case("display name for cluster id", CNI, {**seed, "cluster_id": "Webshop-Prod"}, "copy it from the cluster's"),
        Case("unknown conf key", CNI, {**seed, "clusterid": web.id}, "Unknown parameter(s) clusterid"),
        Case("unknown cluster on the seed", CNI, {**seed, "cluster_id": "zzzzz99999"}, "does not exist in the seed"),
        Case("unknown cluster in the project", CNI, {**api, "cluster_id": "zzzzz99999"}, "was not found in project"),
        Case("wrong project on the API", CNI, {**api, "project_id": "prj0000000"}, "project prj0000000"),
        Case("wrong project on the seed", CNI, {**seed, "project_id": "prj0000000"}, "belongs to project"),
        Case("malformed project id", CNI, {**seed, "project_id": "Project_1"}, "is not a KKP project ID"),
        Case("API without project", CNI, {**api, "project_id": ""}, "access=api needs project_id"),
        Case("ebpf after the switch without Konnectivity", CNI,
             {**seed, "cluster_id": pay.id, "proxy_mode_after": "ebpf"}, "Konnectivity"),
        Case("ebpf on Canal", PROXY, {**seed, "proxy_mode": "ebpf"}, "Cilium"),
        Case("Cilium -> Canal in ebpf", BACK, {**seed, "cluster_id": ana.id, "canal_version": "v3.31"},
             "proxy mode"),
        Case("window in an unknown zone", CNI, {**seed, "maintenance_window": {
            "days": ["sat"], "start": "02:00", "duration": "3h", "timezone": "Berlin"}}, "IANA"),
        Case("window with days and cron", CNI, {**seed, "maintenance_window": {
            "days": ["sat"], "start": "02:00", "cron": "0 2 * * 6", "duration": "3h", "timezone": "UTC"}},
             "either days+start or cron"),
        Case("window of ten days", CNI, {**seed, "maintenance_window": {
            "cron": "0 2 * * 6", "duration": "10d", "timezone": "UTC"}}, "at most 7 days"),
        # the cluster is already where the run would take it: a no-op
        Case("Canal -> Cilium on a Cilium cluster", CNI, {**seed, "cluster_id": ana.id}, "already runs Cilium"),
        Case("Cilium -> Canal on a Canal cluster", BACK, {**seed, "canal_version": "v3.31"}, "already runs Canal"),
        Case("proxy mode it already has", PROXY, {**seed, "proxy_mode": "iptables"}, "already"),
        # connections
        Case("missing seed connection", CNI, {**seed, "seed_conn_id": "kkp_seed_missing"}, "does not exist; create it"),
        Case("missing API connection", CNI, {**api, "api_conn_id": "kkp_api_missing"}, "does not exist; create it"),
        Case("seed connection without kubeconfig", CNI, {**seed, "seed_conn_id": "bad_seed_empty"},
             "neither kube_config nor kube_config_path"),
        Case("seed kubeconfig that is not one", CNI, {**seed, "seed_conn_id": "bad_seed_garbage"},
             "is not a kubeconfig"),
        Case("seed kubeconfig without clusters", CNI, {**seed, "seed_conn_id": "bad_seed_no_clusters"},
             "has no clusters"),
        Case("wrong seed token", CNI, {**seed, "seed_conn_id": "bad_seed_token"}, "renew the token"),
        Case("seed behind an untrusted certificate", CNI, {**seed, "seed_conn_id": "bad_seed_ca"},
             "certificate-authority-data"),
        Case("unreachable seed", CNI, {**seed, "seed_conn_id": "bad_seed_unreachable"}, "check the server URL"),
        Case("wrong API token", CNI, {**api, "api_conn_id": "bad_api_token"}, "renew the token"),
        Case("API connection without host", CNI, {**api, "api_conn_id": "bad_api_no_host"}, "has no host"),
        Case("API connection without token", CNI, {**api, "api_conn_id": "bad_api_no_token"}, "no token"),
        Case("API behind an untrusted certificate", CNI, {**api, "api_conn_id": "bad_api_ca"}, "not trusted"),
    ]


def register_bad_connections(api, kkp_lab) -> None:
    seed = kkp_lab.lab.seed
    good_api = kkp_lab.kkp.airflow_connections(kkp_lab.ca_file)["kkp_api"]
    foreign_ca = base64.b64encode(open(certifi.where(), "rb").read().split(b"-----END CERTIFICATE-----")[0]
                                  + b"-----END CERTIFICATE-----\n").decode()
    untrusted, unreachable = copy.deepcopy(seed.kubeconfig()), copy.deepcopy(seed.kubeconfig())
    untrusted["clusters"][0]["cluster"]["certificate-authority-data"] = foreign_ca
    unreachable["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    for conn_id, extra in {"bad_seed_empty": {}, "bad_seed_garbage": {"kube_config": "::: not yaml :::"},
                           "bad_seed_no_clusters": {"kube_config": {"apiVersion": "v1", "kind": "Config"}},
                           "bad_seed_token": {"kube_config": seed.kubeconfig(token="expired-token")},
                           "bad_seed_ca": {"kube_config": untrusted},
                           "bad_seed_unreachable": {"kube_config": unreachable}}.items():
        api.put_connection(conn_id, "kubernetes", extra)
    api.put_connection("bad_api_token", "http", good_api["extra"], host=good_api["host"], password="wrong-token")
    api.put_connection("bad_api_no_host", "http", good_api["extra"], password=good_api["password"])
    api.put_connection("bad_api_no_token", "http", good_api["extra"], host=good_api["host"])
    api.put_connection("bad_api_ca", "http", {}, host=good_api["host"], password=good_api["password"])


def lock_holders(kkp_lab) -> dict[str, str]:
    store = kkp_lab.lab.seed.store
    clusters = kkp_lab.lab.call(lambda: store.items(store.rtype("kubermatic.k8c.io", "clusters")))
    return {c["metadata"]["name"]: c["metadata"]["annotations"][LOCK] for c in clusters
            if LOCK in (c["metadata"].get("annotations") or {})}


def unfinished(api, batch: list[Case]) -> list[str]:
    """Names of the batch's runs not ended yet (one listing per DAG, not one call per run)."""
    states = {(dag_id, r["dag_run_id"]): r["state"] for dag_id in {c.dag_id for c in batch}
              for r in api.dag_runs(dag_id)}
    return [c.name for c in batch if c.run_id and states.get((c.dag_id, c.run_id)) not in ("success", "failed")]


def outcome(api, case: Case) -> tuple[str, str]:
    """(run state, what the run said) once it ended: the report's outcome, a sentence or a no-op."""
    report = api.xcom(case.dag_id, case.run_id, "report", key="report")
    return api.run_state(case.dag_id, case.run_id), report["outcome"]


def test_bad_inputs_are_rejected_before_any_write(airflow, kkp_lab):
    api = airflow.api
    register_lab_connections(api, kkp_lab)
    register_bad_connections(api, kkp_lab)
    for dag_id in (CNI, BACK, PROXY):
        api.unpause(dag_id)
    writes = client_writes(kkp_lab.lab, kkp_lab.kkp)
    suite = cases(kkp_lab)
    assert len({c.name for c in suite}) == len(suite) >= 30

    deadline = time.monotonic() + SUITE_TIMEOUT
    for start in range(0, len(suite), BATCH):
        batch = suite[start:start + BATCH]
        for case in batch:
            try:
                case.run_id = api.trigger(case.dag_id, case.conf)
                airflow.runs.append((case.dag_id, case.run_id))
            except AirflowRestError as refused:
                assert refused.status in (400, 422), refused
                case.message = f"trigger refused ({refused.status}): {refused}"
        while pending := unfinished(api, batch):
            airflow.check_running()
            assert time.monotonic() < deadline, f"still running after {SUITE_TIMEOUT} s: {pending}"
            time.sleep(2)

    wrote = client_writes(kkp_lab.lab, kkp_lab.kkp) - writes
    locks = lock_holders(kkp_lab)
    failures = []
    for case in suite:
        if case.run_id:
            state, case.message = outcome(api, case)
            noop = state == "success" and case.message.startswith("nothing to do")
            rejected = noop or (state == "failed" and case.message.startswith("FAILED at "))
        else:
            rejected = True
        says_fix = case.fix.lower() in case.message.lower() and "\n" not in case.message
        figures.bad_input(case.name, rejected and says_fix and wrote == 0 and not locks, case.message)
        print(f"{case.name:45} {case.message}")
        if not (rejected and says_fix):
            failures.append(f"{case.name}: expected a refusal saying {case.fix!r}, got {case.message!r}")
    assert not failures, "\n".join(failures)
    assert wrote == 0, f"the lab saw {wrote} write(s) during the bad-input suite"
    assert not locks, f"clusters left locked: {locks}"
    for secret in (kkp_lab.token, kkp_lab.lab.seed.admin_token):
        assert not any(secret in c.message for c in suite)
