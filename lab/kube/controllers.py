"""One cluster's simulated control plane and node agents, and what they share."""

from __future__ import annotations

from lab.apiserver.resources import ResourceType

from .daemonset import DaemonSets
from .deployment import Deployments
from .disruption import DisruptionBudgets
from .job import Jobs
from .kubelet import Kubelet
from .machinedeployment import MachineDeployments
from .network import Network
from .nodes import NodeLifecycle
from .podindex import PodIndex
from .queue import WorkQueue
from .replicaset import ReplicaSets
from .scheduler import Scheduler
from .statefulset import StatefulSets


class Controllers:
    """The controllers of one `lab.cluster.Cluster`, all driven by its store's events and its clock."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store
        self.clock = cluster.clock
        self.pods = PodIndex(self.store)
        self.network = Network(self)
        self.nodes = NodeLifecycle(self)
        self.scheduler = Scheduler(self)
        self.kubelet = Kubelet(self)
        self.replicasets = ReplicaSets(self)
        self.deployments = Deployments(self)
        self.daemonsets = DaemonSets(self)
        self.statefulsets = StatefulSets(self)
        self.jobs = Jobs(self)
        self.disruption = DisruptionBudgets(self)
        self.machinedeployments = MachineDeployments(self)

    def rt(self, group: str, plural: str) -> ResourceType:
        return self.store.rtype(group, plural)

    def queue(self, name: str, handler) -> WorkQueue:
        return WorkQueue(f"{self.cluster.name}/{name}", handler, self.clock)

    def start(self) -> None:
        for part in (self.network, self.nodes, self.scheduler, self.kubelet, self.replicasets, self.deployments,
                     self.daemonsets, self.statefulsets, self.jobs, self.disruption, self.machinedeployments):
            part.start()
