"""The DAGs under API faults: transient ones (5xx, resets) at a fifth of all requests on the seed,
the KKP API and the user cluster at once are survived by each step's own bounded retries (no
Airflow retry), with the same end state as a clean run; permanent ones (401, 403, 404) fail the
first task that meets them at once, with one sentence saying what to fix."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import figures
from tests.airflow_support import run_conf, run_dag, xcom
from tests.dags.test_canal_to_cilium import include_bare_pods
from tests.dags.test_proxy_mode import add_cluster
from tests.fault_counts import count_injections
from tests.lab_state import cni_state

CNI_DAG = "kkp_cni_canal_to_cilium"
PROXY_DAG = "kkp_proxy_mode"
TRANSIENT = {
    "errors": {"error_rate": 0.2, "error_codes": (500, 503)},
    "resets": {"timeout_rate": 0.2, "hang_seconds": 0.05},
}


def inject(kkp_lab, user, **faults) -> Counter:
    """The same faults on the seed, the KKP API and the user cluster; returns the live injection count."""
    counts: Counter = Counter()
    for where, target in (("seed", kkp_lab.lab.seed.faults), ("kkp-api", kkp_lab.kkp.faults),
                          ("user", user.api.faults)):
        count_injections(target, counts, where)
        kkp_lab.lab.call(lambda t=target: t.update(**faults))
    return counts


def record(name: str, counts: Counter, as_promised: bool, before, after) -> None:
    figures.fault(name, injected=sum(counts.values()), as_promised=as_promised,
                  pods_lost=len(set(before.bare_pods) - set(after.pod_names)),
                  pdb_violations=len(after.pdb_violations))


def try_numbers(dag_id: str, run_id: str) -> dict[str, int]:
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.try_number for ti in session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id))}


def assert_no_airflow_retry(dag_id: str, run_id: str) -> None:
    retried = {t: n for t, n in try_numbers(dag_id, run_id).items() if n > 1}
    assert not retried, f"tasks needed Airflow's retries: {retried}"


def cni_conf(user, access: str) -> dict:
    conf = {"cluster_id": user.id, "access": access, "restart_machine_deployments": False}
    if access == "api":
        conf["project_id"] = user.project_id
    return conf


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
@pytest.mark.parametrize("access", ["seed", "api"])
def test_canal_to_cilium_survives_transient_faults(airflow_db, lab_connections, access, fault):
    lab, user = lab_connections.lab, lab_connections.clusters["webshop-canal-iptables"]
    before = cni_state(lab, user)
    counts = inject(lab_connections, user, **TRANSIENT[fault])

    state, tasks, _, run_id = run_dag(CNI_DAG, cni_conf(user, access), include_bare_pods)

    print(f"injected during {access}/{fault}: {dict(counts)}")
    after = cni_state(lab, user)
    record(f"{CNI_DAG} {access} {fault} 20%", counts, state == "success", before, after)
    assert counts[f"user {'reset' if fault == 'resets' else 500}"] > 0 and sum(
        n for k, n in counts.items() if k.startswith("seed" if access == "seed" else "kkp-api")) > 0
    assert state == "success", tasks
    assert_no_airflow_retry(CNI_DAG, run_id)
    assert after.cluster_cni == "cilium" and after.cilium_ready
    assert after.unmanaged_pods == [] and after.canal_objects == []
    assert set(before.bare_pods) <= set(after.pod_names), "a pod without a controller was lost"
    assert after.workloads() == before.workloads()
    assert after.pdb_violations == []
    assert xcom(CNI_DAG, run_id, "report")["outcome"] == "completed and verified"


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
@pytest.mark.parametrize("access", ["seed", "api"])
def test_proxy_mode_survives_transient_faults(airflow_db, lab_connections, access, fault):
    lab = lab_connections.lab
    user = add_cluster(lab_connections, "proxy-faults", "cilium", "1.19.4", "iptables")
    before = cni_state(lab, user)
    workloads = before.workloads()
    counts = inject(lab_connections, user, **TRANSIENT[fault])

    conf = {"cluster_id": user.id, "access": access, "proxy_mode": "ebpf", "restart_machine_deployments": False}
    if access == "api":
        conf["project_id"] = user.project_id
    state, tasks, _, run_id = run_dag(PROXY_DAG, conf)

    print(f"injected during {access}/{fault}: {dict(counts)}")
    after = cni_state(lab, user)
    record(f"{PROXY_DAG} {access} {fault} 20%", counts, state == "success", before, after)
    assert sum(counts.values()) > 0
    assert state == "success", tasks
    assert_no_airflow_retry(PROXY_DAG, run_id)
    assert after.proxy_mode == "ebpf" and after.proxy_configmap_mode is None
    assert after.cilium_ready and after.unmanaged_pods == []
    assert after.workloads() == workloads
    assert after.pdb_violations == []
    assert xcom(PROXY_DAG, run_id, "report")["outcome"] == "completed and verified"


PERMANENT = {401: {"reject_token": True}, 403: {"error_rate": 1.0, "error_codes": (403,)},
             404: {"error_rate": 1.0, "error_codes": (404,)}}
# (where the fault is, access path, what the sentence must tell a person to fix)
FIX = {
    ("seed", 401): "renew the token", ("seed", 403): "permission", ("seed", 404): "cluster_id",
    ("kkp-api", 401): "renew the token", ("kkp-api", 403): "permissions", ("kkp-api", 404): "cluster_id",
    ("user", 401): "renew the token", ("user", 403): "permission", ("user", 404): "is the cluster meant",
}


@pytest.mark.parametrize("code", sorted(PERMANENT))
@pytest.mark.parametrize("where", ["seed", "kkp-api", "user"])
def test_permanent_faults_fail_at_once_with_a_sentence(airflow_db, lab_connections, where, code):
    lab, user = lab_connections.lab, lab_connections.clusters["webshop-canal-iptables"]
    target = {"seed": lab.seed, "kkp-api": lab_connections.kkp, "user": user.api}[where].faults
    lab.call(lambda: target.update(**PERMANENT[code]))
    access = "api" if where == "kkp-api" else "seed"

    state, tasks, answers, run_id = run_dag(CNI_DAG, cni_conf(user, access), include_bare_pods)

    assert state == "failed" and answers == []
    failed = [t for t, s in tasks.items() if s == "failed" and t != "report"]
    assert failed == ["preflight"], tasks
    assert try_numbers(CNI_DAG, run_id)["preflight"] == 1, "a permanent fault must not be retried"
    error = xcom(CNI_DAG, run_id, "preflight", key="error")
    print(f"{where} {code}: {error}")
    figures.fault(f"{CNI_DAG} {where} {code}", injected=1, pods_lost=0, as_promised=state == "failed" and bool(
        error) and cni_state(lab, user).cluster_cni == "canal")
    assert error and "\n" not in error and error.rstrip().endswith("."), error
    assert FIX[(where, code)].lower() in error.lower(), error
    for secret in (lab_connections.token, user.api.admin_token, lab.seed.admin_token):
        assert secret not in error
    assert cni_state(lab, user).cluster_cni == "canal"


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_cilium_to_canal_survives_transient_faults(airflow_db, lab_connections, fault):
    lab = lab_connections.lab
    user = add_cluster(lab_connections, "canal-faults", "cilium", "1.19.4", "iptables")
    before = cni_state(lab, user)
    counts = inject(lab_connections, user, **TRANSIENT[fault])

    state, tasks, _, run_id = run_dag("kkp_cni_cilium_to_canal", run_conf(user, "api", canal_version="v3.31"),
                                      include_bare_pods)

    print(f"injected during api/{fault}: {dict(counts)}")
    after = cni_state(lab, user)
    record(f"kkp_cni_cilium_to_canal api {fault} 20%", counts, state == "success", before, after)
    assert sum(counts.values()) > 0
    assert state == "success", tasks
    assert_no_airflow_retry("kkp_cni_cilium_to_canal", run_id)
    assert after.cluster_cni == "canal" and after.canal_ready and not after.cilium_ready
    assert after.not_on_canal == [] and set(before.bare_pods) <= set(after.pod_names)
    assert after.workloads() == before.workloads() and after.pdb_violations == []


def test_pods_that_crash_loop_after_the_restart_fail_the_run_with_the_rollback(airflow_db, lab_connections):
    lab, user = lab_connections.lab, lab_connections.clusters["webshop-canal-iptables"]
    before = cni_state(lab, user)
    lab.call(lambda: user.api.faults.update(crashloop_after_restart=True))

    state, tasks, _, run_id = run_dag(CNI_DAG, run_conf(user, pods_managed_timeout_minutes=0.1, pdb_wait_seconds=5))

    after = cni_state(lab, user)
    report = xcom(CNI_DAG, run_id, "report", key="report")
    failed = [t for t in report["failed"] if t != "report"]
    print(f"failed: {failed}; {report['errors']}")
    promised = state == "failed" and bool(failed) and all(report["errors"][t] for t in failed) and \
        report["rollback"]["dag_id"] == "kkp_cni_cilium_to_canal"
    record(f"{CNI_DAG} pods crash-loop after restart", Counter(crashloop=1), promised, before, after)
    assert promised, report
    assert tasks["step_4_remove_canal.delete_canal_objects"] == "upstream_failed", "Canal must stay for the rollback"
    assert after.canal_ready and set(before.bare_pods) <= set(after.pod_names) and after.pdb_violations == []
