"""Fixtures shared by every test tier: a running lab and clients pointed at it."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture
def lab():
    """A fresh lab (seed only) with a fast clock; stopped after the test."""
    from lab.runtime import Lab

    instance = Lab(time_factor=0.01).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def kube_client():
    """`kube_client(cluster)` -> a `kubernetes.client.ApiClient` for that lab cluster, as its admin."""
    from kubernetes import client, config

    made = []

    def make(cluster, token: str | None = None):
        cfg = client.Configuration()
        config.load_kube_config_from_dict(cluster.kubeconfig(token), client_configuration=cfg)
        api = client.ApiClient(cfg)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def kubeconfig_file(tmp_path):
    """`kubeconfig_file(cluster)` -> path of a kubeconfig file for kubectl."""
    def write(cluster, token: str | None = None):
        path = tmp_path / f"{cluster.name}.kubeconfig"
        path.write_text(yaml.safe_dump(cluster.kubeconfig(token)))
        return str(path)
    return write


@pytest.fixture
def kkp_lab(tmp_path):
    """A started lab with KKP and the default scenario (3 user clusters, settled), time factor 0.01.

    Exposes `url`, `token`, `ca_file`, `project_id` of the KKP API, `clusters` (name -> UserCluster),
    and `lab` / `kkp` to reach into the simulation (faults, `lab.call`).
    """
    from types import SimpleNamespace

    from lab import scenario
    from lab.runtime import Lab

    instance = Lab(time_factor=0.01).start()
    try:
        kkp = instance.install_kkp()
        users = scenario.build(kkp)
        scenario.wait_settled(kkp)
        ca_file = tmp_path / "kkp-ca.crt"
        ca_file.write_bytes(instance.tls.ca_pem)
        yield SimpleNamespace(lab=instance, kkp=kkp, url=kkp.url, token=kkp.token, ca_file=str(ca_file),
                              project_id=kkp.project_id, clusters={u.spec.name: u for u in users})
    finally:
        instance.stop()


def pytest_terminal_summary(terminalreporter):
    """The reliability figures (tests/figures.py) of whatever this session ran."""
    from tests import figures

    lines = figures.summary()
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
