"""kube.py and kkp.py against the lab's faults: transient answers (5xx, resets) are retried until
an answer comes, permanent ones (401, 403, 404) are not retried and name the fix in one sentence."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from kkp_migration.errors import BadInput, MigrationError, NeedsAttention
from kkp_migration.kkp import ApiAccess, SeedAccess
from kkp_migration.kube import Kube, NotFound
from tests.fault_counts import count_injections

TRANSIENT = [{"error_rate": 0.2, "error_codes": (500, 503)}, {"timeout_rate": 0.2, "hang_seconds": 0.05}]
PERMANENT = {401: {"reject_token": True}, 403: {"error_rate": 1.0, "error_codes": (403,)},
             404: {"error_rate": 1.0, "error_codes": (404,)}}


def fault(lab, target, counts: Counter, where: str, **changes) -> None:
    count_injections(target, counts, where)
    lab.call(lambda: target.update(**changes))


def count_requests(cluster) -> Counter:
    """Every request a lab cluster receives authenticates exactly once: count those calls."""
    counts: Counter = Counter()
    authenticate = cluster.authenticate

    def counted(header):
        counts["requests"] += 1
        return authenticate(header)

    cluster.authenticate = counted
    return counts


def api_access(kkp_lab, user) -> ApiAccess:
    return ApiAccess(kkp_lab.url, kkp_lab.token, user.project_id, user.id, verify=kkp_lab.ca_file)


@pytest.mark.parametrize("faults", TRANSIENT, ids=["errors", "resets"])
def test_transient_faults_are_retried_until_an_answer(kkp_lab, faults):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    counts: Counter = Counter()
    fault(lab, lab.seed.faults, counts, "seed", **faults)
    fault(lab, kkp_lab.kkp.faults, counts, "kkp-api", **faults)
    seed = SeedAccess(Kube(lab.seed.kubeconfig(), "seed"), user.id)
    api = api_access(kkp_lab, user)

    for _ in range(40):                 # at 20%, 40 calls each see a fault with near certainty
        assert seed.get_cluster().cni_type == "canal"
        assert api.get_cluster().cni_type == "canal"

    assert sum(n for k, n in counts.items() if k.startswith("seed")) > 0
    assert sum(n for k, n in counts.items() if k.startswith("kkp-api")) > 0


@pytest.mark.parametrize("code", sorted(PERMANENT))
def test_permanent_kube_answers_fail_at_once(kkp_lab, code):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    kube = Kube(user.api.kubeconfig(), f"user cluster {user.id}")
    sent = count_requests(user.api)
    lab.call(lambda: user.api.faults.update(**PERMANENT[code]))

    with pytest.raises(NotFound if code == 404 else NeedsAttention) as err:
        kube.get("/api/v1/namespaces/kube-system/pods")

    assert err.value.code == code
    assert sent["requests"] == 1, "a permanent answer must not be retried"
    assert user.api.admin_token not in str(err.value)
    if code != 404:
        assert "\n" not in str(err.value) and str(err.value).endswith(".")


@pytest.mark.parametrize("code", sorted(PERMANENT))
def test_permanent_kkp_api_answers_fail_at_once(kkp_lab, code):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    lab.call(lambda: kkp_lab.kkp.faults.update(**PERMANENT[code]))
    before = lab.call(lambda: sum(kkp_lab.kkp.requests.values()))

    with pytest.raises(BadInput) as err:
        api_access(kkp_lab, user).get_cluster()

    assert lab.call(lambda: sum(kkp_lab.kkp.requests.values())) == before + 1, "no retry"
    message = str(err.value)
    assert f"({code}" in message and message.endswith(".") and kkp_lab.token not in message


@pytest.mark.parametrize("code", sorted(PERMANENT))
def test_permanent_seed_answers_fail_at_once(kkp_lab, code):
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    sent = count_requests(lab.seed)
    lab.call(lambda: lab.seed.faults.update(**PERMANENT[code]))

    with pytest.raises(BadInput if code == 404 else NeedsAttention) as err:
        SeedAccess(Kube(lab.seed.kubeconfig(), "seed"), user.id).get_cluster()

    assert sent["requests"] == 1, "a permanent answer must not be retried"
    message = str(err.value)
    assert message.endswith(".") and lab.seed.admin_token not in message
    assert {401: "renew the token", 403: "permission", 404: "check cluster_id"}[code] in message


def wait_on(user, name: str, args: dict, seconds: float):
    from kkp_migration.watch import wait_on_cluster
    return asyncio.run(wait_on_cluster(user.api.kubeconfig(), name, args, seconds))


@pytest.mark.parametrize("faults", TRANSIENT, ids=["errors", "resets"])
def test_a_wait_lists_again_through_transient_faults(kkp_lab, faults):
    """Failed lists and watches are started again: the wait sees the cluster as it is, well before its limit."""
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    counts: Counter = Counter()
    user.api.faults.rng.seed(1)          # its first draw (0.13) makes the very first request fail
    fault(lab, user.api.faults, counts, "user", **faults)

    verdict = wait_on(user, "kube_proxy_mode", {"mode": "iptables"}, 120)

    assert verdict.done, verdict.detail
    assert sum(counts.values()) > 0


def test_a_watch_refused_ends_the_wait_at_once_with_a_sentence(kkp_lab):
    """A 403 is not retried until the wait's limit: the wait ends with the reason."""
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    lab.call(lambda: user.api.faults.update(error_rate=1.0, error_codes=(403,)))

    with pytest.raises(MigrationError) as err:
        wait_on(user, "kube_proxy_mode", {"mode": "ipvs"}, 600)     # a hang here would show as a timeout

    message = str(err.value)
    assert "answered 403" in message and "\n" not in message and user.api.admin_token not in message


def test_a_list_answered_with_an_error_never_passes_for_an_empty_cluster(kkp_lab):
    """With every request failing, a wait judged on an empty set (no pod left unmanaged) must not end."""
    lab, user = kkp_lab.lab, kkp_lab.clusters["webshop-canal-iptables"]
    lab.call(lambda: user.api.faults.update(error_rate=1.0, error_codes=(503,)))

    verdict = wait_on(user, "pods_managed", {"cni": "cilium"}, 3)

    assert not verdict.done


def test_a_server_certificate_the_kubeconfig_does_not_trust_fails_at_once(kkp_lab):
    import base64
    import copy

    import certifi

    lab = kkp_lab.lab
    kubeconfig = copy.deepcopy(lab.seed.kubeconfig())
    foreign_ca = open(certifi.where(), "rb").read().split(b"-----END CERTIFICATE-----")[0] + \
        b"-----END CERTIFICATE-----\n"
    kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(foreign_ca).decode()
    sent = count_requests(lab.seed)

    with pytest.raises(NeedsAttention, match=r"^seed at https://.* presented a certificate its kubeconfig does not "
                                             r"trust; set the cluster's certificate-authority-data"):
        Kube(kubeconfig, "seed").get("/api/v1/namespaces")
    assert sent["requests"] == 0, "the TLS handshake fails before any request"
