"""Facts about KKP's CNI versions and objects, as read from KKP 2.31's source, stay true."""

from __future__ import annotations

import pytest

from kkp_migration import versions as v
from kkp_migration.versions import VersionError

MIGRATION = {"unsafe-cni-migration": "true"}
UPGRADE = {"unsafe-cni-upgrade": "true"}


def _names(objects, kind=None):
    return {o.name for o in objects if kind is None or o.kind == kind}


def _crds(objects):
    return [o for o in objects if o.kind == "CustomResourceDefinition"]


# --- the version table --------------------------------------------------------------------


def test_defaults_and_supported_match_kkp_2_31():
    assert v.default("canal") == "v3.31"
    assert v.default("cilium") == "1.19.4"
    assert v.supported("canal") == ("v3.29", "v3.30", "v3.31")
    assert v.supported("cilium") == ("1.17.16", "1.18.10", "1.19.4")
    assert v.supported("none") == ("",)


def test_accepted_is_supported_plus_deprecated():
    assert v.accepted("canal") == tuple(f"v3.{m}" for m in range(21, 32))
    cilium = v.accepted("cilium")
    assert {"v1.11", "v1.12", "1.13.0", "1.13.14", "1.16.9", "1.18.8", "1.19.4"} <= set(cilium)
    assert len(cilium) == 28
    assert "1.15.16" in v.deprecated("cilium") and "1.15.16" not in v.supported("cilium")


def test_every_default_is_supported():
    table = v.load_cni_versions()
    for cni in table.types():
        assert table.default(cni) in table.supported(cni)


def test_unknown_cni_type_is_refused():
    with pytest.raises(VersionError):
        v.supported("flannel")


@pytest.mark.parametrize("version, expected", [
    ("1.13.0", True), ("1.19.4", True), ("1.14.0-rc.1", False),
    ("v1.12", False), ("v1.11", False), ("garbage", False),
])
def test_application_managed_from_1_13(version, expected):
    assert v.is_application_managed(version) is expected


def test_canal_is_never_application_managed():
    assert v.is_application_managed("v3.31", "canal") is False


# --- parsing and spelling -----------------------------------------------------------------


@pytest.mark.parametrize("cni, typed, kkp", [
    ("canal", "3.31", "v3.31"), ("canal", "v3.31", "v3.31"), ("canal", "v3.31.0", "v3.31"),
    ("cilium", "v1.19.4", "1.19.4"), ("cilium", "1.19.4", "1.19.4"), ("cilium", "1.11", "v1.11"),
    ("cilium", "v1.12", "v1.12"), ("none", "", ""),
])
def test_normalize_to_kkp_spelling(cni, typed, kkp):
    assert v.normalize_version(cni, typed) == kkp


@pytest.mark.parametrize("cni, typed", [("canal", "v3.31.2"), ("cilium", "1.12.3"), ("canal", "x"), ("none", "1")])
def test_normalize_refuses_what_kkp_cannot_spell(cni, typed):
    with pytest.raises(VersionError):
        v.normalize_version(cni, typed)


def test_parse_and_order():
    assert v.parse_version("v3.31") == v.Version(3, 31, 0)
    assert v.parse_version("v1.11") < v.parse_version("1.13.0") < v.parse_version("1.13.14")
    assert v.parse_version("1.14.0-rc.1") < v.parse_version("1.14.0")


# --- KKP's admission rules on spec.cniPlugin ------------------------------------------------


def test_type_change_without_label_uses_kkp_message():
    assert v.check_upgrade("cilium", "v3.31", "1.19.4", {}, old_type="canal") == [
        "spec.cniPlugin.type: Forbidden: cannot change CNI plugin type, unless "
        "unsafe-cni-migration label is present"
    ]


def test_type_change_with_label_skips_the_minor_step_rule():
    assert v.check_upgrade("cilium", "v3.31", "1.19.4", MIGRATION, old_type="canal") == []
    assert v.check_upgrade("canal", "1.19.4", "v3.21", MIGRATION, old_type="cilium") == []


def test_type_change_still_needs_an_accepted_version():
    errors = v.check_upgrade("cilium", "v3.31", "1.19.5", MIGRATION, old_type="canal")
    assert len(errors) == 1
    assert errors[0].startswith('spec.cniPlugin.version: Unsupported value: "1.19.5": supported values: ')


def test_two_minor_jump_is_refused_with_kkp_message():
    assert v.check_upgrade("canal", "v3.29", "v3.31", {}) == [
        "spec.cniPlugin.version: Forbidden: cannot upgrade CNI from v3.29 to v3.31, only one minor "
        "version difference is allowed unless unsafe-cni-upgrade label is present"
    ]
    assert v.check_upgrade("canal", "v3.29", "v3.31", UPGRADE) == []


def test_one_minor_step_up_or_down_and_patch_changes_are_allowed():
    assert v.check_upgrade("canal", "v3.30", "v3.31", {}) == []
    assert v.check_upgrade("canal", "v3.31", "v3.30", {}) == []
    assert v.check_upgrade("cilium", "1.18.2", "1.18.10", {}) == []
    assert v.check_upgrade("cilium", "v1.12", "1.13.0", {}) == []
    assert v.check_upgrade("cilium", "1.19.4", "1.17.16", {})  # two minors down


def test_migration_label_does_not_allow_a_version_jump():
    assert v.check_upgrade("canal", "v3.29", "v3.31", MIGRATION)


def test_unaccepted_version_same_type():
    errors = v.check_upgrade("canal", "v3.31", "v3.32", {})
    assert errors == [
        'spec.cniPlugin.version: Unsupported value: "v3.32": supported values: "v3.21", "v3.22", '
        '"v3.23", "v3.24", "v3.25", "v3.26", "v3.27", "v3.28", "v3.29", "v3.30", "v3.31"'
    ]


def test_kkp_spells_versions_exactly():
    assert v.check_upgrade("canal", "v3.30", "3.31", {})[0].startswith(
        'spec.cniPlugin.version: Unsupported value: "3.31"')


def test_canal_3_22_transition_depends_on_kubernetes_version():
    # v3.20 -> v3.22 is two minors, allowed by allowedCNIVersionTransitions on k8s >= 1.23 only
    base = v.check_upgrade("canal", "v3.20", "v3.22", {}, k8s_version="1.22.9")
    assert any("cannot upgrade CNI from v3.20 to v3.22" in e for e in base)
    assert v.check_upgrade("canal", "v3.20", "v3.22", {}, k8s_version="1.33.4") == []
    assert v.check_upgrade("canal", "v3.20", "v3.22", {})  # unknown Kubernetes: strict


@pytest.mark.parametrize("cni, version, kubernetes, refused", [
    ("cilium", "1.17.16", "1.20.15", True),      # the chart's kubeVersion: >= 1.21.0-0
    ("cilium", "1.17.16", "1.33.4", False),
    ("canal", "v3.22", "1.33.4", True),          # its addon still creates policy/v1beta1 PDBs
    ("canal", "v3.22", "1.24.17", False),
    ("canal", "v3.31", "1.33.4", False),
])
def test_kubernetes_constraints_of_a_cni_version(cni, version, kubernetes, refused):
    problems = v.kubernetes_problems(cni, version, kubernetes)
    assert bool(problems) == refused
    assert all(f"{cni} {version} needs Kubernetes" in p for p in problems)


def test_unknown_type_is_refused():
    assert v.check_upgrade("weave", "v3.31", "2.8", MIGRATION, old_type="canal") == [
        'spec.cniPlugin.type: Unsupported value: "weave": supported values: "canal", "cilium", "none"'
    ]


# --- canal objects ------------------------------------------------------------------------


def test_canal_v3_31_objects():
    objects = v.canal_objects("v3.31")
    crds = _crds(objects)
    assert len(objects) == 42
    assert len(crds) == 24
    assert sum(c.name.endswith(".crd.projectcalico.org") for c in crds) == 22
    shared = {c.name for c in crds if c.shared}
    assert shared == {"adminnetworkpolicies.policy.networking.k8s.io",
                      "baselineadminnetworkpolicies.policy.networking.k8s.io"}
    assert {"canal"} == _names(objects, "DaemonSet")
    assert {"calico-kube-controllers", "canal-flannel", "canal-calico", "calico-cni-plugin",
            "calico-tier-getter"} == _names(objects, "ClusterRoleBinding")
    assert {"canal", "calico-kube-controllers", "calico-cni-plugin"} == _names(objects, "ServiceAccount")
    policy = [o for o in objects if o.kind == "NetworkPolicy"]
    assert [(p.name, p.namespace, bool(p.optional)) for p in policy] == [("calico", "kube-system", True)]
    pdb = [o for o in objects if o.kind == "PodDisruptionBudget"]
    assert [(p.api_version, p.name) for p in pdb] == [("policy/v1", "calico-kube-controllers")]


def test_canal_v3_29_lacks_tier_getter_staged_policies_and_baseline_anp():
    objects = v.canal_objects("v3.29")
    names = _names(objects)
    assert "calico-tier-getter" not in names
    assert "baselineadminnetworkpolicies.policy.networking.k8s.io" not in names
    assert not any(n.startswith("staged") for n in names)
    assert "adminnetworkpolicies.policy.networking.k8s.io" in names
    assert len(objects) == 36 and len(_crds(objects)) == 20


def test_canal_old_versions():
    v321 = v.canal_objects("v3.21")
    assert len(v321) == 30 and len(_crds(v321)) == 17
    assert [o.api_version for o in v321 if o.kind == "PodDisruptionBudget"] == ["policy/v1beta1"]
    assert "calico-cni-plugin" not in _names(v321)
    assert "calico-cni-plugin" in _names(v.canal_objects("v3.26"))
    assert "bgpfilters.crd.projectcalico.org" in _names(v.canal_objects("v3.26"))


def test_every_accepted_canal_version_has_objects_and_no_duplicates():
    for version in v.accepted("canal"):
        objects = v.canal_objects(version)
        assert len({o.key for o in objects}) == len(objects), version
        assert all(o.namespace in (None, "kube-system") for o in objects)


def test_canal_objects_refuses_unknown_versions():
    with pytest.raises(VersionError):
        v.canal_objects("v3.20")
    assert v.canal_objects("3.30") == v.canal_objects("v3.30")


# --- cilium objects -----------------------------------------------------------------------


def test_cilium_default_version_objects():
    objects = v.cilium_objects("1.19.4")
    assert len(objects) == 34
    assert _names(objects, "DaemonSet") == {"cilium"}
    assert _names(objects, "Deployment") == {"cilium-operator", "hubble-relay", "hubble-ui"}
    assert "cilium-config" in _names(objects, "ConfigMap")
    assert ("v1", "Namespace", "cilium-secrets", None) in {o.key for o in objects}
    assert not any(o.kind == "CustomResourceDefinition" for o in objects)
    assert not any("envoy" in o.name for o in objects)  # KKP turns envoy off
    job = [o for o in objects if o.kind == "Job"]
    assert len(job) == 1 and job[0].is_pattern and job[0].matches("hubble-generate-certs-10c12c6dc1")


def test_cilium_changes_across_minors():
    assert len(v.cilium_objects("1.13.0")) == 27
    hook_jobs = [o for o in v.cilium_objects("1.18.10") if o.hook]
    assert [(o.kind, o.name) for o in hook_jobs] == [("Job", "hubble-generate-certs")]
    assert "hubble-generate-certs" in _names(v.cilium_objects("1.15.16"), "ClusterRole")
    assert "hubble-generate-certs" in _names(v.cilium_objects("1.16.9"), "Role")
    assert "cilium-secrets" not in _names(v.cilium_objects("1.16.9"))
    assert len(v.cilium_objects("1.17.16")) == 32


def test_every_accepted_cilium_version_has_objects_and_an_owner():
    for version in v.accepted("cilium"):
        objects = v.cilium_objects(version)
        assert len({o.key for o in objects}) == len(objects), version
        owner = v.cilium_managed_by(version)
        if v.is_application_managed(version):
            assert owner.key == ("apps.kubermatic.k8c.io/v1", "ApplicationInstallation", "cilium", "kube-system")
        else:
            assert (owner.kind, owner.name) == ("Addon", "cilium")


def test_cilium_addon_versions():
    for version in ("v1.11", "v1.12"):
        objects = v.cilium_objects(version)
        assert len(objects) == 10
        assert _names(objects, "DaemonSet") == {"cilium"}
        assert v.cilium_runtime_objects(version) == []
    assert len(v.hubble_addon_objects()) == 16


def test_cilium_runtime_crds_are_separate_from_the_chart():
    crds = v.cilium_runtime_crds("1.19.4")
    assert len(crds) == 21
    assert "ciliumendpoints.cilium.io" in crds
    assert "ciliumbgppeeringpolicies.cilium.io" not in crds
    assert all(c.endswith(".cilium.io") for c in crds)
    assert len(v.cilium_runtime_crds("1.13.0")) == 14
    assert len(v.cilium_runtime_crds("v1.12")) == 14
    assert v.cilium_crd_group() == "cilium.io"
    secrets = _names(v.cilium_runtime_objects("1.19.4"), "Secret")
    assert {"cilium-ca", "hubble-server-certs", "hubble-relay-client-certs"} <= secrets


def test_cilium_objects_refuses_unverified_versions():
    for version in ("1.20.0", "1.16.14", "1.14.0-rc.1", "v1.10"):
        with pytest.raises(VersionError):
            v.cilium_objects(version)


def test_to_dict_omits_namespace_for_cluster_scoped():
    crb = next(o for o in v.canal_objects("v3.31") if o.kind == "ClusterRoleBinding")
    assert "namespace" not in crb.to_dict()
    ds = next(o for o in v.canal_objects("v3.31") if o.kind == "DaemonSet")
    assert ds.to_dict() == {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "canal", "namespace": "kube-system"}
