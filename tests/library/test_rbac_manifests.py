"""deploy/rbac/ against the code. The manifests are applied to the lab's seed and user clusters with
`kubectl apply`, and the migrations run with the ServiceAccounts' tokens only: the seed's in the
kkp_seed kubeconfig, the user cluster's in the kubeconfig KKP hands out (the lab puts it where the
admin's would be). The steps are driven directly, in the DAGs' order, waits included.

Least privilege is shown without taking the rules away one by one: no request was allowed by two
rules, and every verb on every resource of every rule allowed some request alone, so removing any
of them refuses a request a migration makes (a few such removals are shown for real below).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kkp_migration import lock, steps, versions
from kkp_migration.errors import MigrationError, NeedsAttention
from kkp_migration.kkp import SeedAccess
from kkp_migration.kube import AccessDenied, Kube
from kkp_migration.usercluster import UserCluster
from kkp_migration.watch import wait_on_cluster
from lab.apiserver.store import Store
from lab.clock import Clock
from lab.rbac import Attributes, matching_rules, service_account_user

RBAC_DIR = Path(__file__).resolve().parents[2] / "deploy" / "rbac"
SEED_YAML, USER_YAML = RBAC_DIR / "seed.yaml", RBAC_DIR / "user-cluster.yaml"
SEED_SA = service_account_user("kkp-cni-migration", "kkp-cni-migration")
USER_SA = service_account_user("kube-system", "kkp-cni-migration")
RUN = "rbac-test/run"


def manifest_rules(path: Path) -> dict[tuple, dict]:
    """(kind, namespace or "", role name, index) -> rule, for every ClusterRole and Role in a manifest:
    the identity the lab records with each request a rule allowed."""
    rules = {}
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] in ("ClusterRole", "Role"):
            meta = doc["metadata"]
            for i, rule in enumerate(doc["rules"]):
                rules[(doc["kind"], meta.get("namespace", ""), meta["name"], i)] = rule
    return rules


def grants_of(rules: dict[tuple, dict]) -> set[tuple]:
    """Every (rule, verb, API group, resource) the rules grant."""
    return {(rid, verb, group, resource) for rid, r in rules.items() for verb in r["verbs"]
            for group in r["apiGroups"] for resource in r["resources"]}


def kubectl_apply(cluster, path: Path, tmp_path: Path) -> None:
    """`kubectl apply -f` as the cluster's admin, as an operator installs the manifests."""
    config = tmp_path / f"{cluster.name}-admin.kubeconfig"
    config.write_text(yaml.safe_dump(cluster.kubeconfig()))
    done = subprocess.run(["kubectl", "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "kube-cache"),
                           "apply", "-f", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl apply -f {path.name} on {cluster.name}: {done.stderr}"


class LeastPrivilege:
    """The kkp_lab with both manifests applied; KKP access and user clusters as the DAGs open them,
    on the ServiceAccounts' tokens."""

    def __init__(self, kkp_lab, tmp_path: Path):
        self.lab, self.clusters = kkp_lab.lab, kkp_lab.clusters
        seed = self.lab.seed
        kubectl_apply(seed, SEED_YAML, tmp_path)
        self.seed_kubeconfig = seed.kubeconfig(self.lab.call(lambda: seed.issue_token(SEED_SA)), "kkp-cni-migration")
        for user in self.clusters.values():
            kubectl_apply(user.api, USER_YAML, tmp_path)
            token = self.lab.call(lambda u=user: u.api.issue_token(USER_SA))
            self.lab.call(lambda u=user, t=token: u.hand_out_kubeconfig(t))

    def kkp(self, name: str) -> SeedAccess:
        return SeedAccess(Kube(self.seed_kubeconfig, "seed (connection kkp_seed)"), self.clusters[name].id)

    @staticmethod
    def user(kkp: SeedAccess) -> UserCluster:
        """As the DAGs' hook opens it: through the kubeconfig KKP hands out."""
        return UserCluster(Kube(kkp.admin_kubeconfig(), f"user cluster {kkp.cluster_id}"), kkp.cluster_id)

    def grants(self) -> Counter:
        """(user, verb, group, resource, rules) -> requests, over the seed and every user cluster."""
        return self.lab.call(lambda: sum((Counter(c.grants) for c in self.lab.clusters.values()), Counter()))


# ---- the migrations, step by step as the DAGs run them ----------------------------------------------


def wait(kkp: SeedAccess, name: str, args: dict, timeout: float = 120) -> None:
    """A deferrable wait as the trigger runs it: on the kubeconfig KKP hands out."""
    verdict = asyncio.run(wait_on_cluster(kkp.admin_kubeconfig(), name, args, timeout))
    assert verdict.done, f"{name}: {verdict.detail}"


def verified(check, timeout: float = 60.0) -> None:
    """A verify step, run again until it passes, as its task is cleared (or retried) while the last
    pods of a machine roll start."""
    deadline = time.monotonic() + timeout
    while not (result := check())["ok"]:
        assert time.monotonic() < deadline, result["problems"]
        time.sleep(0.5)


def restart_pods(kkp: SeedAccess, uc: UserCluster, target: str) -> None:
    """The restart, every pod included, and the pods-managed wait. The wait starts with the restart,
    not after it as in the DAGs: the lab's pods come back so fast that a wait started later would see
    the end at its first list and never watch."""
    steps.plan_restart(uc, target)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait, kkp, "pods_managed", {"cni": target, "exclude": []})
        out = steps.restart_pods(uc, target, include_without_controller=True, parallelism=8, pdb_wait_seconds=60)
        waiting.result()
    assert out["left_alone"] == [] and not out["failed"]


def remove(uc: UserCluster, cni: str, version: str) -> dict:
    steps.plan_removal(uc, cni, version)
    return steps.remove_cni(uc, cni, version, keep_shared_crds=True)


def restart_machines(kkp: SeedAccess, uc: UserCluster) -> None:
    uc.machine_deployments()                       # the plan the approval shows
    uc.pods_without_controller()
    out = steps.restart_machine_deployments(kkp, uc, time.time_ns())
    wait(kkp, "machine_deployments_rolled", {"names": out["machine_deployments"], "since_ns": out["since_ns"]})
    steps.recreate_missing_pods(uc, out["pods_without_controller"])


def migrate(kkp: SeedAccess, source: str, target: str, version: str, before_removal=lambda: None) -> dict:
    """kkp_cni_canal_to_cilium (step 5 kept) or kkp_cni_cilium_to_canal; returns the removal's result."""
    uc = LeastPrivilege.user(kkp)
    pre = steps.preflight(kkp, uc, source=source, target=target, target_version=version)
    lock.acquire(kkp, RUN)
    steps.switch_cni(kkp, target, version)
    wait(kkp, f"{target}_ready", {})
    old = pre["original"]["cni_version"]
    if target == "cilium":
        restart_pods(kkp, uc, target)
        removed = remove(uc, source, old)
    else:                                          # Cilium -> Canal: remove first, then restart
        before_removal()
        removed = remove(uc, source, old)
        restart_pods(kkp, uc, target)
    restart_machines(kkp, uc)
    verified(lambda: steps.verify(kkp, uc, target, source, old))
    assert lock.release(kkp, RUN)
    return removed


def change_proxy_mode(kkp: SeedAccess, mode: str) -> None:
    """kkp_proxy_mode: the ebpf path waits for Cilium's redeploy, ipvs <-> iptables restarts kube-proxy."""
    uc = LeastPrivilege.user(kkp)
    before = steps.preflight_proxy_mode(kkp, mode)["original"]["proxy_mode"]
    lock.acquire(kkp, RUN)
    kkp.get_cluster()                              # the approval's plan
    changed = steps.set_proxy_mode(kkp, mode)
    if "ebpf" in (before, mode):
        wait(kkp, "proxy_mode_via_cilium", {"mode": mode, "since": changed["changed_at"]})
    else:
        wait(kkp, "kube_proxy_mode", {"mode": mode})
        uc.rollout_restart_daemonset("kube-proxy", stamp=changed["changed_at"])
        wait(kkp, "daemonset_rolled", {"name": "kube-proxy"})
    restart_machines(kkp, uc)
    verified(lambda: steps.verify_proxy_mode(kkp, uc, mode))
    assert lock.release(kkp, RUN)


def orphan_cilium_release(lab, user) -> None:
    """The ApplicationInstallation deleted without its uninstall (finalizer taken off by hand): every
    object of the Helm release stays, and the removal must delete each one itself."""
    from lab.kkp.applications import GROUP, PLURAL

    def orphan():
        store = user.api.store
        rt = store.rtype(GROUP, PLURAL)
        store.mutate(rt, "kube-system", "cilium", lambda a: a["metadata"].__setitem__("finalizers", []))
        store.delete(rt, "kube-system", "cilium")
    lab.call(orphan)


def kube_system_network_policy(lab, user) -> None:
    """KKP's kubeSystemNetworkPolicies feature: Canal's optional NetworkPolicy `calico` exists."""
    def create():
        store = user.api.store
        store.create(store.rtype("networking.k8s.io", "networkpolicies"), {
            "metadata": {"name": "calico", "namespace": "kube-system"}, "spec": {"podSelector": {}}})
    lab.call(create)


def test_every_migration_runs_on_exactly_the_shipped_rules(kkp_lab, tmp_path):
    """Canal -> Cilium and back (the release uninstalled by KKP), kube-proxy ipvs -> iptables, and
    ebpf -> iptables then Cilium -> Canal with the release left behind: the paths between them touch
    every kind of object the DAGs read, wait on or delete."""
    env = LeastPrivilege(kkp_lab, tmp_path)
    lab, clusters = env.lab, env.clusters
    kube_system_network_policy(lab, clusters["webshop-canal-iptables"])

    webshop = env.kkp("webshop-canal-iptables")
    removed = migrate(webshop, "canal", "cilium", "1.18.10")
    assert "NetworkPolicy kube-system/calico" in removed["deleted"]
    removed = migrate(webshop, "cilium", "canal", "v3.31")
    assert removed["deleted"][0] == "ApplicationInstallation cilium"
    assert "Job kube-system/hubble-generate-certs" in removed["deleted"], "a Helm hook outlives the uninstall"

    change_proxy_mode(env.kkp("payments-canal-ipvs"), "iptables")

    analytics = env.kkp("analytics-cilium-ebpf")
    change_proxy_mode(analytics, "iptables")
    removed = migrate(analytics, "cilium", "canal", "v3.31",
                      before_removal=lambda: orphan_cilium_release(lab, clusters["analytics-cilium-ebpf"]))
    assert "Namespace cilium-secrets" in removed["deleted"] and "Service kube-system/hubble-ui" in removed["deleted"]

    grants = env.grants()
    assert {user for user, *_ in grants} == {SEED_SA, USER_SA}
    overlapping = [g for g in grants if len(g[4]) > 1]
    assert not overlapping, f"requests two rules allowed: {overlapping}"
    used = {(rules[0], verb, group, resource) for _, verb, group, resource, rules in grants}
    shipped = grants_of(manifest_rules(SEED_YAML)) | grants_of(manifest_rules(USER_YAML))
    assert shipped - used == set(), "granted but never needed"
    assert used == shipped


# ---- outside the rules ------------------------------------------------------------------------------


def test_a_request_outside_the_rules_is_refused_and_the_error_names_the_fix(kkp_lab, tmp_path):
    env = LeastPrivilege(kkp_lab, tmp_path)
    kkp = env.kkp("webshop-canal-iptables")
    uc = LeastPrivilege.user(kkp)
    user = env.clusters["webshop-canal-iptables"]

    with pytest.raises(AccessDenied) as err:
        uc.kube.request("DELETE", "/api/v1/namespaces/default/secrets/app-credentials")
    assert err.value.code == 403
    assert str(err.value) == (
        f"user cluster {user.id}: DELETE /api/v1/namespaces/default/secrets/app-credentials answered 403: "
        f'secrets "app-credentials" is forbidden: User "{USER_SA}" cannot delete resource "secrets" in API '
        f'group "" in the namespace "default"; grant the credentials for user cluster {user.id} that '
        "permission (deploy/rbac/ lists every one the DAGs need).")
    node = uc.nodes()[0]["metadata"]["name"]
    with pytest.raises(AccessDenied, match=f'nodes "{node}" is forbidden: .* cannot patch resource "nodes"'):
        uc.kube.merge_patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}})
    with pytest.raises(AccessDenied, match='cannot update resource "clusters" in API group "kubermatic.k8c.io" '
                                           "at the cluster scope"):
        path = f"/apis/kubermatic.k8c.io/v1/clusters/{user.id}"
        kkp.seed.request("PUT", path, body=kkp.seed.get(path))
    with pytest.raises(AccessDenied, match=f'secrets "ca" is forbidden: User "{SEED_SA}" cannot get'):
        kkp.seed.get(f"/api/v1/namespaces/cluster-{user.id}/secrets/ca")
    assert kkp.get_cluster().id == user.id and uc.nodes(), "what the rules allow still works"


def test_without_a_rule_its_step_fails_at_once_with_the_403(kkp_lab, tmp_path):
    """The eviction rule taken away: the restart stops with the API server's refusal for every pod it
    planned, and a wait refused its watch ends at once with a sentence."""
    env = LeastPrivilege(kkp_lab, tmp_path)
    kkp = env.kkp("webshop-canal-iptables")
    uc = LeastPrivilege.user(kkp)
    user = env.clusters["webshop-canal-iptables"]

    def drop(kind, namespace, name, keep):
        def edit():
            store = user.api.store
            rt = store.rtype("rbac.authorization.k8s.io", "roles" if kind == "Role" else "clusterroles")
            store.mutate(rt, namespace, name, lambda r: r.__setitem__("rules", [x for x in r["rules"] if keep(x)]))
        env.lab.call(edit)

    drop("ClusterRole", None, "kkp-cni-migration", lambda r: r["resources"] != ["pods/eviction"])
    planned = len(uc.restart_plan("cilium").to_restart)
    with pytest.raises(NeedsAttention) as err:          # a retry cannot grant a permission
        steps.restart_pods(uc, "cilium", include_without_controller=False, parallelism=4, pdb_wait_seconds=5)
    assert str(err.value).startswith(f"Cluster {user.id}: {planned} pod(s) could not be restarted")
    assert 'cannot create resource "pods/eviction" in API group ""' in str(err.value)
    assert ".;" not in str(err.value) and str(err.value).endswith("pods already restarted are not restarted again.")

    drop("Role", "kube-system", "kkp-cni-migration", lambda r: r["resources"] != ["configmaps"]
         or "watch" not in r["verbs"])
    with pytest.raises(MigrationError) as err:
        wait(kkp, "kube_proxy_mode", {"mode": "ipvs"}, timeout=600)
    assert "answered 403" in str(err.value) and "permissions" in str(err.value)


def test_removing_the_seed_secret_rule_names_the_fix(kkp_lab, tmp_path):
    env = LeastPrivilege(kkp_lab, tmp_path)
    kkp = env.kkp("webshop-canal-iptables")
    seed = env.lab.seed.store
    env.lab.call(lambda: seed.delete(seed.rtype("rbac.authorization.k8s.io", "clusterrolebindings"), None,
                                     "kkp-cni-migration:admin-kubeconfig"))

    with pytest.raises(NeedsAttention) as err:
        kkp.admin_kubeconfig()
    assert "admin-kubeconfig" in str(err.value) and "grant the credentials for seed" in str(err.value)


# ---- the names in the manifest and the CNI object lists ------------------------------------------------


def _plural(kind: str) -> str:
    """Kubernetes' default plural of a kind, right for every kind the object lists hold."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + ("es" if lower.endswith("s") else "s")


def test_the_resource_names_match_the_cni_object_lists():
    """Every object of every Canal and Cilium version the project knows is allowed by name (get and
    delete, list where its name has a generated suffix), and no name is allowed that no list or step
    needs: a new version in include/kkp_migration/data/ fails here until its names are added."""
    store = Store("offline", Clock(1.0))
    store.create(store.rtype("", "namespaces"), {"metadata": {"name": "kube-system"}})
    for doc in yaml.safe_load_all(USER_YAML.read_text()):
        store.create(store.rtype(doc["apiVersion"].rpartition("/")[0], _plural(doc["kind"])), doc,
                     doc["metadata"].get("namespace"))

    def allowed(verb, group, resource, namespace, name) -> bool:
        return bool(matching_rules(store, Attributes(USER_SA, verb, group, resource, None, namespace, name)))

    needed: dict[tuple, set] = {}
    for cni in ("canal", "cilium"):
        for version in versions.accepted(cni):
            for obj in steps.cni_objects(cni, version):
                group = obj["apiVersion"].rpartition("/")[0]
                key = (group, _plural(obj["kind"]))
                name, ns = obj["name"], obj.get("namespace")
                if name.endswith("*"):
                    assert allowed("list", *key, ns, None), obj
                    assert allowed("delete", *key, ns, name[:-1] + "x7k2p"), obj
                    continue
                needed.setdefault(key, set()).add(name)
                assert allowed("get", *key, ns, name) and allowed("delete", *key, ns, name), obj
    needed[("apps", "daemonsets")].add("kube-proxy")          # the steps' own: rollout restart, waits, verify
    needed[("", "configmaps")].add("kube-proxy")

    named: dict[tuple, set] = {}
    unnamed = set()                     # resources a rule allows under any name (generated suffixes)
    for rule in manifest_rules(USER_YAML).values():
        for key in ((g, r) for g in rule["apiGroups"] for r in rule["resources"]):
            if rule.get("resourceNames"):
                named.setdefault(key, set()).update(rule["resourceNames"])
            else:
                unnamed.add(key)
    assert named == {k: v for k, v in needed.items() if k not in unnamed}
