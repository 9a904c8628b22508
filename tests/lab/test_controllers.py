"""The simulated life of a user cluster, driven through the real `kubernetes` client."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lab.apiserver.disruption import pod_ready
from lab.kube import install, timing, workloads as w
from lab.kube.machinedeployment import GROUP, HASH_LABEL, MD_LABEL, VERSION
from lab.kube.network import CALICO_CONTAINER, CALICO_IP, CALICO_IPS

CANAL = dict(labels={"k8s-app": "canal"}, containers=["calico-node", "kube-flannel"], host_network=True)
CILIUM = dict(labels={"k8s-app": "cilium"}, containers=["cilium-agent"], host_network=True)


def wait_until(probe, what: str, timeout: float = 60.0):
    """Poll `probe` until it returns something truthy (the timeout only catches hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_state(lab, probe, what: str, timeout: float = 60.0):
    """Poll `probe` on the lab's loop (where the store may be read) until it returns something truthy."""
    return wait_until(lambda: lab.call(probe), what, timeout)


@pytest.fixture
def cluster(lab):
    user = lab.add_cluster("u1")
    lab.call(lambda: install(user))
    return user


@pytest.fixture
def api(cluster, kube_client):
    return kube_client(cluster)


def build(lab, cluster, *objs):
    return lab.call(lambda: w.create(cluster, *objs))


def pods(cluster, namespace: str | None = None, **labels) -> list[dict]:
    store = cluster.store
    return [p for p in store.items(store.rtype("", "pods"), namespace)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]


def phase(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("phase")


def running(cluster, count: int, namespace: str = "default", **labels):
    """The pods matching `labels` once exactly `count` of them are active, Running and Ready."""
    def probe():
        live = [p for p in pods(cluster, namespace, **labels) if not p["metadata"].get("deletionTimestamp")]
        if len(live) == count and all(phase(p) == "Running" and pod_ready(p) for p in live):
            return live
        return None
    return probe


def cep_owner(cluster, namespace: str, name: str) -> str | None:
    rt = cluster.store.types.get(("cilium.io", "ciliumendpoints"))
    cep = cluster.store.try_get(rt, namespace, name) if rt else None
    return cep["metadata"]["ownerReferences"][0]["uid"] if cep else None


def with_cilium_crd(lab, cluster):
    from lab.apiserver.resources import crd_object
    crd = crd_object("cilium.io", "v2", "CiliumEndpoint", "ciliumendpoints", True, short_names=("cep",))
    build(lab, cluster, crd)
    wait_state(lab, lambda: ("cilium.io", "ciliumendpoints") in cluster.store.types, "the CiliumEndpoint CRD")


def test_install_is_idempotent(lab, cluster):
    listeners = lab.call(lambda: {key: len(cbs) for key, cbs in cluster.store.listeners.items()})
    first = lab.call(lambda: install(cluster))
    assert lab.call(lambda: install(cluster)) is first
    assert lab.call(lambda: {key: len(cbs) for key, cbs in cluster.store.listeners.items()}) == listeners


# ---- workloads -----------------------------------------------------------------------------------------


def test_deployment_recreates_a_deleted_pod(lab, cluster, api):
    build(lab, cluster, w.nodes(3), w.daemonset("canal", "kube-system", **CANAL))
    client.AppsV1Api(api).create_namespaced_deployment("default", w.deployment("web", replicas=3))
    first = wait_state(lab, running(cluster, 3, app="web"), "3 web pods")
    victim = first[0]["metadata"]["name"]

    client.CoreV1Api(api).delete_namespaced_pod(victim, "default")

    after = wait_state(lab, running(cluster, 3, app="web"), "a replacement web pod")
    names = {p["metadata"]["name"] for p in after}
    assert victim not in names
    assert len(names & {p["metadata"]["name"] for p in first}) == 2
    replacement = next(p for p in after if p["metadata"]["name"] not in {q["metadata"]["name"] for q in first})
    ref = replacement["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicaSet" and ref["controller"] is True
    status = client.AppsV1Api(api).read_namespaced_deployment("web", "default").status
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3)


def test_rollout_restart_replaces_every_pod_within_surge_and_unavailability(lab, cluster, api):
    build(lab, cluster, w.nodes(3), w.daemonset("canal", "kube-system", **CANAL), w.deployment("web", replicas=4))
    before = {p["metadata"]["name"] for p in wait_state(lab, running(cluster, 4, app="web"), "4 web pods")}
    seen = {"max_desired": 0, "min_ready": 4}

    def record_sets(event):
        sets = cluster.store.items(cluster.store.rtype("apps", "replicasets"), "default")
        seen["max_desired"] = max(seen["max_desired"], sum(rs["spec"]["replicas"] for rs in sets))

    def record_pods(event):
        live = [p for p in pods(cluster, "default", app="web") if not p["metadata"].get("deletionTimestamp")]
        seen["min_ready"] = min(seen["min_ready"], sum(1 for p in live if pod_ready(p)))
    lab.call(lambda: (cluster.store.listen("apps", "replicasets", record_sets),
                      cluster.store.listen("", "pods", record_pods)))

    client.AppsV1Api(api).patch_namespaced_deployment("web", "default", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})

    def rolled():
        d = client.AppsV1Api(api).read_namespaced_deployment("web", "default")
        s = d.status
        return (s.observed_generation == d.metadata.generation and s.updated_replicas == 4 and s.replicas == 4
                and s.available_replicas == 4) and lab.call(running(cluster, 4, app="web"))
    after = wait_until(rolled, "the restarted rollout")
    assert not before & {p["metadata"]["name"] for p in after}
    assert len({p["metadata"]["labels"]["pod-template-hash"] for p in after}) == 1
    assert seen["max_desired"] <= 5                # replicas + maxSurge (25% of 4, rounded up)
    assert seen["min_ready"] >= 3                  # replicas - maxUnavailable (25% of 4, rounded down)
    sets = client.AppsV1Api(api).list_namespaced_replica_set("default").items
    assert sorted(rs.spec.replicas for rs in sets) == [0, 4]
    conditions = {c.type: c.reason for c in client.AppsV1Api(api).read_namespaced_deployment(
        "web", "default").status.conditions}
    assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


def test_daemonset_runs_one_pod_per_node_including_a_new_node(lab, cluster, api):
    build(lab, cluster, w.nodes(3), w.daemonset("canal", "kube-system", **CANAL))
    client.AppsV1Api(api).create_namespaced_daemon_set("default", w.daemonset("agent"))
    wait_state(lab, running(cluster, 3, app="agent"), "3 agent pods")

    client.CoreV1Api(api).create_node(w.nodes(1, first=4)[0])

    agents = wait_state(lab, running(cluster, 4, app="agent"), "an agent pod on the new node")
    assert sorted(p["spec"]["nodeName"] for p in agents) == ["worker-1", "worker-2", "worker-3", "worker-4"]

    def status():
        s = client.AppsV1Api(api).read_namespaced_daemon_set("agent", "default").status
        return s if s.number_available == 4 else None
    s = wait_until(status, "DaemonSet status of 4 nodes")
    assert (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready, s.updated_number_scheduled) == \
        (4, 4, 4, 4)


def test_statefulset_recreates_a_deleted_pod_under_its_name(lab, cluster, api):
    build(lab, cluster, w.nodes(2), w.daemonset("canal", "kube-system", **CANAL), w.statefulset("db", replicas=3))
    wait_state(lab, running(cluster, 3, app="db"), "db-0..2")
    old_uid = lab.call(lambda: next(p for p in pods(cluster, "default", app="db")
                                    if p["metadata"]["name"] == "db-1"))["metadata"]["uid"]

    client.CoreV1Api(api).delete_namespaced_pod("db-1", "default")

    def recreated():
        live = lab.call(running(cluster, 3, app="db"))
        return live and next(p for p in live if p["metadata"]["name"] == "db-1")["metadata"]["uid"] != old_uid
    wait_until(recreated, "db-1 recreated")
    assert sorted(p["metadata"]["name"] for p in lab.call(lambda: pods(cluster, "default", app="db"))) == \
        ["db-0", "db-1", "db-2"]


def test_job_completes(lab, cluster, api):
    build(lab, cluster, w.nodes(1), w.daemonset("canal", "kube-system", **CANAL))
    client.BatchV1Api(api).create_namespaced_job("default", w.job("migrate", completions=2, run_seconds=3))

    def complete():
        s = client.BatchV1Api(api).read_namespaced_job("migrate", "default").status
        return s if s and any(c.type == "Complete" and c.status == "True" for c in s.conditions or ()) else None
    s = wait_until(complete, "the job to complete")
    assert s.succeeded == 2 and not s.active
    phases = [p["status"]["phase"] for p in lab.call(lambda: pods(cluster, "default", **{"job-name": "migrate"}))]
    assert phases == ["Succeeded", "Succeeded"]


def test_the_time_factor_scales_the_pod_start_delay(lab, cluster, api, kube_client):
    from lab.runtime import Lab

    slow_lab = Lab(time_factor=2.0).start()             # the fixture's lab runs at 0.01
    try:
        slow = slow_lab.add_cluster("slow")
        slow_lab.call(lambda: install(slow))
        build(slow_lab, slow, w.nodes(1))
        build(lab, cluster, w.nodes(1))
        started = time.monotonic()
        client.CoreV1Api(kube_client(slow)).create_namespaced_pod("default", w.pod("p", host_network=True))
        wait_state(slow_lab, lambda: [p for p in pods(slow, "default") if phase(p) == "Pending"],
                   "the pod accepted by the slow lab's kubelet")
        client.CoreV1Api(api).create_namespaced_pod("default", w.pod("p", host_network=True))

        wait_state(lab, running(cluster, 1, app="p"), "the pod running at factor 0.01")
        assert phase(slow_lab.call(lambda: pods(slow, "default"))[0]) == "Pending"

        wait_state(slow_lab, running(slow, 1, app="p"), "the pod running at factor 2")
        assert time.monotonic() - started >= 2.0 * timing.POD_START - 0.05
    finally:
        slow_lab.stop()


# ---- disruption budgets ----------------------------------------------------------------------------------


def test_pdb_status_and_eviction_blocked_until_the_replacement_is_ready(lab, cluster, api):
    build(lab, cluster, w.nodes(3), w.daemonset("canal", "kube-system", **CANAL), w.deployment("db", replicas=3),
          w.pdb("db", match_labels={"app": "db"}, min_available=2))
    first = wait_state(lab, running(cluster, 3, app="db"), "3 db pods")
    policy = client.PolicyV1Api(api)

    def budget():
        s = policy.read_namespaced_pod_disruption_budget("db", "default").status
        return s if s and s.current_healthy == 3 else None
    s = wait_until(budget, "the budget's status")
    assert (s.expected_pods, s.desired_healthy, s.disruptions_allowed) == (3, 2, 1)

    def evict(name):
        policy_body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
        client.CoreV1Api(api).create_namespaced_pod_eviction(name, "default", policy_body)

    cluster.faults.update(crashloop_after_restart=True)        # the replacement will not become Ready
    evict(first[0]["metadata"]["name"])
    wait_state(lab, lambda: len([p for p in pods(cluster, "default", app="db")
                                 if p["metadata"]["name"] not in {q["metadata"]["name"] for q in first}]) == 1,
               "the replacement pod")
    with pytest.raises(ApiException) as refused:
        evict(first[1]["metadata"]["name"])
    assert refused.value.status == 429
    assert wait_until(lambda: (p := policy.read_namespaced_pod_disruption_budget("db", "default").status)
                      and p.current_healthy == 2 and p.disruptions_allowed == 0 and p, "the budget exhausted")

    cluster.faults.update(crashloop_after_restart=False)

    def crash_looping():
        for p in pods(cluster, "default", app="db"):
            statuses = (p.get("status") or {}).get("containerStatuses") or [{}]
            if statuses[0].get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
                return p
        return None
    crashing = wait_state(lab, crash_looping, "the replacement in CrashLoopBackOff")
    wait_state(lab, lambda: (p := cluster.store.get(cluster.store.rtype("", "pods"), "default",
                                                     crashing["metadata"]["name"]))
               and p["status"]["containerStatuses"][0]["restartCount"] >= 2, "the restart count growing")
    client.CoreV1Api(api).delete_namespaced_pod(crashing["metadata"]["name"], "default")
    wait_state(lab, running(cluster, 3, app="db"), "a Ready replacement")

    evict(first[1]["metadata"]["name"])
    deleted = lab.call(lambda: cluster.store.try_get(cluster.store.rtype("", "pods"), "default",
                                                     first[1]["metadata"]["name"]))
    assert deleted is None or deleted["metadata"].get("deletionTimestamp")


# ---- CNI wiring ----------------------------------------------------------------------------------------------


def test_pods_wait_for_a_cni_agent_then_run_wired_by_canal(lab, cluster, api):
    build(lab, cluster, w.nodes(2), w.deployment("web", replicas=2), w.pod("node-exporter", host_network=True))
    wait_state(lab, running(cluster, 1, app="node-exporter"), "the host-network pod (needs no CNI)")

    def creating():
        web = client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=web").items
        return len(web) == 2 and all(
            p.status.phase == "Pending" and p.status.container_statuses
            and p.status.container_statuses[0].state.waiting.reason == "ContainerCreating" for p in web)
    wait_until(creating, "web pods stuck in ContainerCreating")

    build(lab, cluster, w.daemonset("canal", "kube-system", **CANAL))

    web = wait_state(lab, running(cluster, 2, app="web"), "web pods running once canal is ready")
    for pod in web:
        annotations = pod["metadata"]["annotations"]
        assert annotations[CALICO_IP] == annotations[CALICO_IPS] == pod["status"]["podIP"] + "/32"
        assert len(annotations[CALICO_CONTAINER]) == 64
    exporter = lab.call(lambda: pods(cluster, "default", app="node-exporter"))[0]
    assert CALICO_IP not in (exporter["metadata"].get("annotations") or {})
    assert exporter["status"]["podIP"] == exporter["status"]["hostIP"]


def test_cilium_wires_new_pods_with_endpoints_while_canal_pods_stay(lab, cluster, api):
    build(lab, cluster, w.nodes(2), w.daemonset("canal", "kube-system", **CANAL), w.deployment("old", replicas=2))
    wait_state(lab, running(cluster, 2, app="old"), "canal-wired pods")
    build(lab, cluster, w.daemonset("cilium", "kube-system", **CILIUM))
    wait_state(lab, running(cluster, 2, "kube-system", **{"k8s-app": "cilium"}), "cilium agents")

    build(lab, cluster, w.deployment("new", replicas=2))
    wait_state(lab, lambda: (new := pods(cluster, "default", app="new")) and len(new) == 2
               and all((p.get("status") or {}).get("containerStatuses") for p in new),
               "new pods accepted by the kubelet")
    assert lab.call(lambda: all(p["status"]["phase"] == "Pending" for p in pods(cluster, "default", app="new"))), \
        "Cilium cannot wire pods before its CiliumEndpoint CRD exists"

    with_cilium_crd(lab, cluster)
    new = wait_state(lab, running(cluster, 2, app="new"), "cilium-wired pods")
    for pod in new:
        assert CALICO_IP not in (pod["metadata"].get("annotations") or {})
        cep = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "cilium.io", "v2", "default", "ciliumendpoints", pod["metadata"]["name"])
        assert cep["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
        assert cep["status"]["networking"]["addressing"] == [{"ipv4": pod["status"]["podIP"]}]
        assert cep["status"]["identity"]["id"] >= 10000
    for pod in lab.call(lambda: pods(cluster, "default", app="old")):
        assert CALICO_IP in pod["metadata"]["annotations"] and pod_ready(pod)
        assert lab.call(cep_owner, cluster, "default", pod["metadata"]["name"]) is None


def test_removing_canal_breaks_the_pods_it_wired_but_not_cilium_pods(lab, cluster, api):
    with_cilium_crd(lab, cluster)
    build(lab, cluster, w.nodes(2), w.daemonset("canal", "kube-system", **CANAL), w.deployment("old", replicas=2))
    wait_state(lab, running(cluster, 2, app="old"), "canal-wired pods")
    build(lab, cluster, w.daemonset("cilium", "kube-system", **CILIUM))
    wait_state(lab, running(cluster, 2, "kube-system", **{"k8s-app": "cilium"}), "cilium agents")
    build(lab, cluster, w.deployment("new", replicas=2))
    wait_state(lab, running(cluster, 2, app="new"), "cilium-wired pods")

    client.AppsV1Api(api).delete_namespaced_daemon_set("canal", "kube-system")

    def broken():
        old = client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=old").items
        ready = [next(c for c in p.status.conditions if c.type == "Ready") for p in old]
        return (old, ready) if all(c.status == "False" for c in ready) else None
    old, ready = wait_until(broken, "canal-wired pods to lose their network")
    for pod, cond in zip(old, ready, strict=True):
        assert cond.reason == "NetworkUnavailable"
        assert "canal" in cond.message and pod.spec.node_name in cond.message
        assert pod.status.phase == "Running" and not pod.status.container_statuses[0].ready
    assert lab.call(running(cluster, 2, app="new")), "cilium-wired pods keep working"

    client.CoreV1Api(api).delete_namespaced_pod(old[0].metadata.name, "default")
    recreated = wait_state(lab, lambda: (live := [p for p in pods(cluster, "default", app="old")
                                                  if p["metadata"]["name"] != old[0].metadata.name
                                                  and p["metadata"]["name"] != old[1].metadata.name])
                           and pod_ready(live[0]) and live[0], "a recreated pod wired by cilium")
    assert lab.call(lambda: cep_owner(cluster, "default", recreated["metadata"]["name"])) == \
        recreated["metadata"]["uid"]
    still_broken = lab.call(lambda: cluster.store.get(cluster.store.rtype("", "pods"), "default", old[1].metadata.name))
    assert not pod_ready(still_broken), "a broken pod stays broken until it is recreated"


def test_restarted_cilium_agents_readopt_their_pods(lab, cluster, api):
    with_cilium_crd(lab, cluster)
    build(lab, cluster, w.nodes(2), w.daemonset("cilium", "kube-system", **CILIUM), w.deployment("web", replicas=2))
    web = wait_state(lab, running(cluster, 2, app="web"), "cilium-wired pods")
    agents = {p["metadata"]["name"] for p in lab.call(lambda: pods(cluster, "kube-system"))}

    client.AppsV1Api(api).patch_namespaced_daemon_set("cilium", "kube-system", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "cilium.io", "v2", "default", "ciliumendpoints", web[0]["metadata"]["name"])

    rolled = wait_state(lab, lambda: (live := running(cluster, 2, "kube-system")()) and not agents & {
        p["metadata"]["name"] for p in live} and live, "rolled cilium agents")
    assert len(rolled) == 2
    wait_state(lab, lambda: cep_owner(cluster, "default", web[0]["metadata"]["name"]) == web[0]["metadata"]["uid"],
               "the endpoint re-created by the restarted agent")
    assert lab.call(running(cluster, 2, app="web")) and {p["metadata"]["uid"] for p in lab.call(
        running(cluster, 2, app="web"))} == {p["metadata"]["uid"] for p in web}


def test_cni_agents_created_under_the_fault_never_become_ready(lab, cluster, api):
    build(lab, cluster, w.nodes(1), w.daemonset("canal", "kube-system", **CANAL))
    wait_state(lab, running(cluster, 1, "kube-system"), "canal agent")
    cluster.faults.update(cni_never_ready=True)
    with_cilium_crd(lab, cluster)
    build(lab, cluster, w.daemonset("cilium", "kube-system", **CILIUM))
    wait_state(lab, lambda: [p for p in pods(cluster, "kube-system", **{"k8s-app": "cilium"})
                             if phase(p) == "Running"], "a running cilium agent")

    build(lab, cluster, w.deployment("web"))
    pod = wait_state(lab, running(cluster, 1, app="web"), "a pod wired by the still-ready canal")[0]
    assert CALICO_IP in pod["metadata"]["annotations"]
    agent = lab.call(lambda: pods(cluster, "kube-system", **{"k8s-app": "cilium"}))[0]
    assert agent["status"]["phase"] == "Running" and not pod_ready(agent)


# ---- machine deployments ------------------------------------------------------------------------------------


def test_machinedeployment_restart_replaces_nodes_one_by_one_honouring_pdbs(lab, cluster, api):
    build(lab, cluster, w.machine_deployment("workers", 3, kernel="6.8.0-1021-aws"),
          w.daemonset("canal", "kube-system", **CANAL), w.deployment("web", replicas=4),
          w.pdb("web", match_labels={"app": "web"}, min_available=3))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def md_status():
        md = custom.get_namespaced_custom_object(GROUP, VERSION, "kube-system", "machinedeployments", "workers")
        return md.get("status") or {}
    wait_until(lambda: md_status().get("readyReplicas") == 3, "3 Ready machines")
    wait_state(lab, running(cluster, 4, app="web"), "4 web pods")
    old_nodes = {n.metadata.name for n in core.list_node().items}
    assert all(n.status.node_info.kernel_version == "6.8.0-1021-aws" for n in core.list_node().items)
    seen = {"max_nodes": 0, "min_ready_nodes": 3, "max_cordoned": 0, "min_ready_web": 4}

    def record_nodes(event):
        nodes = cluster.store.items(cluster.store.rtype("", "nodes"))
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in (n.get("status") or {}).get("conditions") or ())]
        seen["max_nodes"] = max(seen["max_nodes"], len(nodes))
        seen["min_ready_nodes"] = min(seen["min_ready_nodes"], len(ready))
        seen["max_cordoned"] = max(seen["max_cordoned"], sum(1 for n in nodes if n["spec"].get("unschedulable")))

    def record_pods(event):
        seen["min_ready_web"] = min(seen["min_ready_web"], sum(1 for p in pods(cluster, "default", app="web")
                                                               if pod_ready(p)))
    lab.call(lambda: (cluster.store.listen("", "nodes", record_nodes), cluster.store.listen("", "pods", record_pods)))

    custom.patch_namespaced_custom_object(GROUP, VERSION, "kube-system", "machinedeployments", "workers", {
        "spec": {"template": {"metadata": {"annotations": {"forceRestart": str(time.time_ns())}}}}})

    def replaced():
        s = md_status()
        nodes = core.list_node().items
        return (s.get("updatedReplicas") == 3 and s.get("readyReplicas") == 3 and len(nodes) == 3
                and not old_nodes & {n.metadata.name for n in nodes}) and nodes
    new_nodes = wait_until(replaced, "every machine replaced", timeout=120)
    web = wait_state(lab, running(cluster, 4, app="web"), "web pods rescheduled")
    assert {p["spec"]["nodeName"] for p in web} <= {n.metadata.name for n in new_nodes}
    assert len({n.metadata.labels[HASH_LABEL] for n in new_nodes}) == 1
    assert all(n.metadata.labels[MD_LABEL] == "workers" and not n.spec.unschedulable for n in new_nodes)
    assert seen["max_nodes"] <= 4, "maxSurge 1: at most one extra machine at a time"
    assert seen["min_ready_nodes"] >= 3, "maxUnavailable 0: a node leaves only once its successor is Ready"
    assert seen["max_cordoned"] <= 1, "one node drained at a time"
    assert seen["min_ready_web"] >= 3, "the PodDisruptionBudget (minAvailable 3) held during the drains"
    canal = wait_state(lab, running(cluster, 3, "kube-system", **{"k8s-app": "canal"}), "canal on every new node")
    assert {p["spec"]["nodeName"] for p in canal} == {n.metadata.name for n in new_nodes}


# ---- scale ------------------------------------------------------------------------------------------------------


def test_a_cluster_of_5000_pods_on_100_nodes(lab, cluster, api):
    build(lab, cluster, w.nodes(100), w.daemonset("canal", "kube-system", **CANAL),
          [w.deployment(f"app-{i}", replicas=98) for i in range(50)])
    wait_state(lab, lambda: sum(1 for p in pods(cluster) if phase(p) == "Running") == 5000,
               "5,000 running pods", timeout=300)

    listed = client.CoreV1Api(api).list_pod_for_all_namespaces()

    assert len(listed.items) == 5000
    per_node = {}
    for pod in listed.items:
        per_node[pod.spec.node_name] = per_node.get(pod.spec.node_name, 0) + 1
    assert len(per_node) == 100 and max(per_node.values()) - min(per_node.values()) <= 2
