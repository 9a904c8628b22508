"""KKP on the lab's seed: the Cluster resource and its webhook, the controllers that roll CNI and
kube-proxy changes into user clusters, the user-cluster application controller, and the REST API v2.

Its admission rules are the lab's own implementation (it never imports the product); it reads
only the shared version and object tables in include/kkp_migration/data.
"""

from .installation import Kkp, KkpOptions
from .usercluster import ClusterSpec, UserCluster

__all__ = ["Kkp", "KkpOptions", "ClusterSpec", "UserCluster"]
