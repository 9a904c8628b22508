"""The runbook done by hand with kubectl alone against the lab, as a person would type it.

It proves the lab behaves where the runbook depends on it, and shows what the runbook's step-3
pipeline costs: it deletes pods without a controller, which nothing brings back.
"""

from __future__ import annotations

import os
import subprocess
import time

import yaml

from tests.lab_state import cni_state


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


def until(check, timeout: float = 60.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return result


def test_canal_to_cilium_by_hand(kkp_lab, kubeconfig_file, tmp_path):
    from lab.kkp import canal

    lab = kkp_lab.lab
    user = kkp_lab.clusters["webshop-canal-iptables"]
    seed, cluster = kubeconfig_file(lab.seed), kubeconfig_file(user.api)
    before = cni_state(lab, user)
    assert "Running" in kubectl(cluster, "get", "pods", "-A")

    # Step 1 and 2: label the Cluster in the seed, then change spec.cniPlugin.
    kubectl(seed, "label", "cluster", user.id, "unsafe-cni-migration=true")
    kubectl(seed, "patch", "cluster", user.id, "--type", "merge",
            "-p", '{"spec": {"cniPlugin": {"type": "cilium", "version": "1.19.4"}}}')
    until(lambda: "cilium-operator" in kubectl(cluster, "get", "pods", "-A"))
    kubectl(cluster, "-n", "kube-system", "rollout", "status", "daemonset/cilium", "--timeout=60s")
    listing = kubectl(cluster, "get", "pods", "-A")
    assert "canal-" in listing and "cilium-" in listing, "both CNIs run, as the runbook shows"

    # Step 3: the runbook's pipeline, verbatim.
    pipeline = ("kubectl get pods --all-namespaces -o custom-columns=NAMESPACE:.metadata.namespace,"
                "NAME:.metadata.name,HOSTNETWORK:.spec.hostNetwork --no-headers=true | grep '<none>' | "
                "awk '{print \"-n \"$1\" \"$2}' | xargs -L 1 -r kubectl delete pod")
    done = subprocess.run(["bash", "-c", pipeline], env={**os.environ, "KUBECONFIG": cluster}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'pod "debug-shell" deleted' in done.stdout
    until(lambda: not cni_state(lab, user).unmanaged_pods, timeout=120)

    # Step 4: delete the Canal manifest of the version the cluster ran.
    manifest = tmp_path / "canal.yaml"
    manifest.write_text(yaml.safe_dump_all(canal.manifest(before.cluster_cni_version)))
    kubectl(cluster, "delete", "-f", str(manifest), "--wait=false")

    after = until(lambda: (s := cni_state(lab, user)).canal_objects == [] and s, timeout=60)
    assert after.cluster_cni == "cilium" and after.cilium_ready
    assert after.unmanaged_pods == []
    assert "default/debug-shell" in before.bare_pods and "default/debug-shell" not in after.pod_names, \
        "the runbook's pipeline loses pods without a controller"


def test_kube_proxy_mode_by_hand(kkp_lab, kubeconfig_file):
    """"Changing the Kube-Proxy Mode", ipvs -> iptables, with the runbook's own commands."""
    lab = kkp_lab.lab
    user = kkp_lab.clusters["payments-canal-ipvs"]
    seed, cluster = kubeconfig_file(lab.seed), kubeconfig_file(user.api)
    env = {**os.environ, "KUBECONFIG": cluster}

    def configmap_mode() -> str:
        done = subprocess.run(["bash", "-o", "pipefail", "-c",
                               "kubectl get configmap kube-proxy -n kube-system -oyaml | grep mode"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def kube_proxy_pods() -> dict[str, str]:
        listed = yaml.safe_load(kubectl(cluster, "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy",
                                        "-o", "yaml"))
        return {p["metadata"]["uid"]: p["status"].get("phase") for p in listed["items"]}

    assert "mode: ipvs" in configmap_mode()
    before = kube_proxy_pods()
    assert before and set(before.values()) == {"Running"}

    # Steps 1 and 2: the label, then spec.clusterNetwork.proxyMode in the seed.
    kubectl(seed, "label", "cluster", user.id, "unsafe-cni-migration=true")
    kubectl(seed, "patch", "cluster", user.id, "--type", "merge", "-p",
            '{"spec": {"clusterNetwork": {"proxyMode": "iptables"}}}')

    # Step 3: watch the ConfigMap until it carries the new mode, then restart kube-proxy.
    until(lambda: "mode: iptables" in configmap_mode(), timeout=60)
    assert "mode: ipvs" not in configmap_mode()
    out = kubectl(cluster, "rollout", "restart", "daemonset", "kube-proxy", "-n", "kube-system")
    assert "daemonset.apps/kube-proxy restarted" in out
    kubectl(cluster, "rollout", "status", "daemonset/kube-proxy", "-n", "kube-system", "--timeout=60s")
    after = until(lambda: (pods := kube_proxy_pods()) and set(pods.values()) == {"Running"} and
                  len(pods) == len(before) and pods)
    assert not set(after) & set(before), "every kube-proxy pod was replaced"
    assert cni_state(lab, user).proxy_mode == "iptables"
