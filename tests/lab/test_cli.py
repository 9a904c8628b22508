"""`python -m lab up | fault | status` as a separate process: files, serving, run-time faults, shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[2]


def _lab(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, **kw)


def _kubectl(config: Path, *args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--kubeconfig", str(config), "--cache-dir", str(cache), *args],
                          capture_output=True, text=True, timeout=60)


def _start(out: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lab", "up", "--dir", str(out), "--time-factor", "0.01",
                             "--fault", "webshop-canal-iptables:latency=0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    ready: list[str] = []

    def read():
        for line in proc.stdout:
            if line.startswith("lab ready:"):
                ready.append(line)
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    if not ready:
        proc.kill()
        raise AssertionError(f"lab did not get ready: {proc.stderr.read()}")
    return proc, ready[0]


def test_up_writes_its_files_serves_and_shuts_down_cleanly(tmp_path):
    out = tmp_path / "lab"
    proc, ready = _start(out)
    try:
        info = json.loads((out / "lab.json").read_text())
        assert {c["name"] for c in info["clusters"]} == {"payments-canal-ipvs", "webshop-canal-iptables",
                                                         "analytics-cilium-ebpf"}
        for c in info["clusters"]:
            assert c["id"] in ready and Path(c["kubeconfig"]) == out / "clusters" / f"{c['id']}.kubeconfig"
        api = json.loads((out / "kkp-api.json").read_text())
        assert set(api) >= {"url", "token", "ca_file"} and Path(api["ca_file"]) == out / "ca.crt"

        cache = tmp_path / "kube-cache"
        listing = _kubectl(out / "seed.kubeconfig", "get", "clusters", "-o", "name", cache=cache)
        assert listing.returncode == 0, listing.stderr
        assert len(listing.stdout.split()) == 3

        payments = next(c for c in info["clusters"] if c["name"] == "payments-canal-ipvs")
        cluster_url = f"{api['url']}/api/v2/projects/{api['project_id']}/clusters/{payments['id']}"
        auth = {"Authorization": f"Bearer {api['token']}"}
        assert requests.get(cluster_url, headers=auth, verify=api["ca_file"], timeout=30).json()["id"] == payments["id"]

        connections = json.loads((out / "airflow-connections.json").read_text())
        seed = connections["kkp_seed"]
        assert seed["conn_type"] == "kubernetes"
        assert seed["extra"]["kube_config"] == yaml.safe_load((out / "seed.kubeconfig").read_text())
        assert connections["kkp_api"] == {"conn_type": "http", "host": api["url"], "password": api["token"],
                                          "extra": {"ca_file": api["ca_file"]}}

        # the runbook's step 4: kubectl delete -f <the Canal manifest of the version the cluster ran>
        manifest = out / "manifests" / "canal_v3.30.yaml"
        assert {f"canal_{v}.yaml" for v in ("v3.21", "v3.29", "v3.31")} <= {p.name for p in manifest.parent.iterdir()}
        deleted = _kubectl(Path(payments["kubeconfig"]), "delete", "-f", str(manifest), cache=cache)
        assert deleted.returncode == 0, deleted.stderr
        assert 'daemonset.apps "canal" deleted' in deleted.stdout
        left = _kubectl(Path(payments["kubeconfig"]), "get", "daemonsets", "-n", "kube-system", "-o", "name",
                        cache=cache)
        assert "daemonset.apps/canal" not in left.stdout.split()

        changed = _lab("fault", "--dir", str(out), "--cluster", "kkp", "reject_token=true")
        assert changed.returncode == 0 and json.loads(changed.stdout)["reject_token"] is True
        assert requests.get(cluster_url, headers=auth, verify=api["ca_file"], timeout=30).status_code == 401
        unknown = _lab("fault", "--dir", str(out), "--cluster", "kkp", "no_such_fault=1")
        assert unknown.returncode != 0 and "unknown fault" in unknown.stderr

        # user-cluster faults, by ID or by name, take effect on its API and switch off again
        webshop = next(c for c in info["clusters"] if c["name"] == "webshop-canal-iptables")
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": "debug-shell", "namespace": "default"}}
        with config.new_client_from_config(config_file=webshop["kubeconfig"]) as user_client:
            core = client.CoreV1Api(user_client)
            on = _lab("fault", "--dir", str(out), "--cluster", webshop["id"], "error_rate=1.0", "error_codes=503")
            assert on.returncode == 0 and json.loads(on.stdout)["error_codes"] == [503]
            with pytest.raises(ApiException) as err:
                core.read_namespaced_pod("debug-shell", "default")
            assert err.value.status == 503
            switched = _lab("fault", "--dir", str(out), "--cluster", "webshop-canal-iptables", "error_rate=0",
                            "block_evictions=true")
            assert switched.returncode == 0 and json.loads(switched.stdout)["block_evictions"] is True
            assert core.read_namespaced_pod("debug-shell", "default").metadata.name == "debug-shell"
            with pytest.raises(ApiException) as err:
                core.create_namespaced_pod_eviction("debug-shell", "default", eviction)
            assert err.value.status == 429
            assert _lab("fault", "--dir", str(out), "--cluster", webshop["id"], "block_evictions=false").returncode == 0
            core.create_namespaced_pod_eviction("debug-shell", "default", eviction)

        status = _lab("status", "--dir", str(out), "--json")
        assert status.returncode == 0
        data = json.loads(status.stdout)
        assert data["kkp_faults"]["reject_token"] is True
        assert {c["name"] for c in data["clusters"]} == {c["name"] for c in info["clusters"]}
        table = _lab("status", "--dir", str(out))
        assert "payments-canal-ipvs" in table.stdout and "canal/v3.30" in table.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0
    for port in info["ports"].values():
        with socket.socket() as sock:                 # the port is free again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def test_up_refuses_a_malformed_fault(tmp_path):
    done = _lab("up", "--dir", str(tmp_path / "lab"), "--fault", "latency=1")
    assert done.returncode != 0 and "CLUSTER:name=value" in done.stderr
