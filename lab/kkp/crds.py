"""The CustomResourceDefinitions KKP brings: Cluster on the seed, ApplicationInstallation in user clusters."""

from __future__ import annotations

from lab.apiserver.resources import crd_object


def _col(name: str, path: str, typ: str = "string") -> dict:
    return {"name": name, "jsonPath": path, "type": typ}


CLUSTER = crd_object(
    "kubermatic.k8c.io", "v1", "Cluster", "clusters", False,
    printer_columns=(
        _col("HumanReadableName", ".spec.humanReadableName"), _col("Owner", ".status.userEmail"),
        _col("Version", ".spec.version"), _col("Provider", ".spec.cloud.providerName"),
        _col("Datacenter", ".spec.cloud.dc"), _col("Phase", ".status.phase"),
        _col("Paused", ".spec.pause", "boolean"), _col("Age", ".metadata.creationTimestamp", "date"),
    ),
)

APPLICATION_INSTALLATION = crd_object(
    "apps.kubermatic.k8c.io", "v1", "ApplicationInstallation", "applicationinstallations", True,
    printer_columns=(
        _col("HelmRelease", ".status.helmRelease.name"), _col("Application", ".spec.applicationRef.name"),
        _col("Version", ".spec.applicationRef.version"), _col("App Version", ".status.applicationVersion.version"),
        _col("Age", ".metadata.creationTimestamp", "date"),
    ),
)

# Kind, served version and scope of the CRDs the CNIs bring, by plural (the data files name CRDs only).
_CNI_CRDS = {
    "crd.projectcalico.org": ("v1", {
        "bgpconfigurations": ("BGPConfiguration", False), "bgpfilters": ("BGPFilter", False),
        "bgppeers": ("BGPPeer", False), "blockaffinities": ("BlockAffinity", False),
        "caliconodestatuses": ("CalicoNodeStatus", False), "clusterinformations": ("ClusterInformation", False),
        "felixconfigurations": ("FelixConfiguration", False),
        "globalnetworkpolicies": ("GlobalNetworkPolicy", False), "globalnetworksets": ("GlobalNetworkSet", False),
        "hostendpoints": ("HostEndpoint", False), "ipamblocks": ("IPAMBlock", False),
        "ipamconfigs": ("IPAMConfig", False), "ipamhandles": ("IPAMHandle", False), "ippools": ("IPPool", False),
        "ipreservations": ("IPReservation", False),
        "kubecontrollersconfigurations": ("KubeControllersConfiguration", False),
        "networkpolicies": ("NetworkPolicy", True), "networksets": ("NetworkSet", True),
        "tiers": ("Tier", False), "stagedglobalnetworkpolicies": ("StagedGlobalNetworkPolicy", False),
        "stagedkubernetesnetworkpolicies": ("StagedKubernetesNetworkPolicy", True),
        "stagednetworkpolicies": ("StagedNetworkPolicy", True),
    }),
    "policy.networking.k8s.io": ("v1alpha1", {
        "adminnetworkpolicies": ("AdminNetworkPolicy", False),
        "baselineadminnetworkpolicies": ("BaselineAdminNetworkPolicy", False),
    }),
    "cilium.io": ("v2", {
        "ciliumendpoints": ("CiliumEndpoint", True), "ciliumnodes": ("CiliumNode", False),
        "ciliumidentities": ("CiliumIdentity", False), "ciliumnetworkpolicies": ("CiliumNetworkPolicy", True),
        "ciliumclusterwidenetworkpolicies": ("CiliumClusterwideNetworkPolicy", False),
        "ciliumexternalworkloads": ("CiliumExternalWorkload", False),
        "ciliumlocalredirectpolicies": ("CiliumLocalRedirectPolicy", True),
        "ciliumnodeconfigs": ("CiliumNodeConfig", True), "ciliumloadbalancerippools": ("CiliumLoadBalancerIPPool", False),
        "ciliumcidrgroups": ("CiliumCIDRGroup", False), "ciliumpodippools": ("CiliumPodIPPool", False),
        "ciliumendpointslices": ("CiliumEndpointSlice", False),
        "ciliuml2announcementpolicies": ("CiliumL2AnnouncementPolicy", False),
        "ciliumbgpclusterconfigs": ("CiliumBGPClusterConfig", False),
        "ciliumbgppeerconfigs": ("CiliumBGPPeerConfig", False),
        "ciliumbgpadvertisements": ("CiliumBGPAdvertisement", False),
        "ciliumbgpnodeconfigs": ("CiliumBGPNodeConfig", False),
        "ciliumbgpnodeconfigoverrides": ("CiliumBGPNodeConfigOverride", False),
        "ciliumenvoyconfigs": ("CiliumEnvoyConfig", True),
        "ciliumclusterwideenvoyconfigs": ("CiliumClusterwideEnvoyConfig", False),
        "ciliumbgppeeringpolicies": ("CiliumBGPPeeringPolicy", False),
        "ciliumegressnatpolicies": ("CiliumEgressNATPolicy", False),
        "ciliumegressgatewaypolicies": ("CiliumEgressGatewayPolicy", False),
        "ciliumbgploadbalancerippools": ("CiliumBGPLoadBalancerIPPool", False),
        "ciliumgatewayclassconfigs": ("CiliumGatewayClassConfig", True),
    }),
}
_SHORT_NAMES = {"ciliumendpoints": ("cep", "ciliumep"), "ciliumnetworkpolicies": ("cnp", "ciliumnp"),
                "ciliumnodes": ("cn", "ciliumn"), "adminnetworkpolicies": ("anp",),
                "baselineadminnetworkpolicies": ("banp",)}


def cni_crd(name: str) -> dict:
    """The CRD `<plural>.<group>` that a CNI manifest names, with its kind, version and scope."""
    plural, _, group = name.partition(".")
    version, kinds = _CNI_CRDS[group]
    kind, namespaced = kinds[plural]
    crd = crd_object(group, version, kind, plural, namespaced, short_names=_SHORT_NAMES.get(plural, ()))
    return crd
