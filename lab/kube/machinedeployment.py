"""machine-controller's MachineDeployments: worker nodes per spec.replicas, rolled one node at a time.

Nodes are named `<md>-<template hash>-<5 random>` and labelled with their MachineDeployment and
template hash (Machine and MachineSet objects are not simulated). A template change (KKP's restart
sets spec.template.metadata.annotations["forceRestart"]) rolls with maxSurge (default 1) and
maxUnavailable (default 0): a new node joins and turns Ready, then an old node is cordoned,
drained through the eviction rules and deleted. The node image comes from the template:
spec.template.spec.providerSpec.value.operatingSystem picks the OS (`nodes.OS_DEFAULTS`);
spec.template.metadata.annotations["lab.kubermatic.io/kernel-version"] and
["lab.kubermatic.io/os-image"] override kernel and OS image; spec.template.spec.versions.kubelet
sets the kubelet version.
"""

from __future__ import annotations

import asyncio
import logging
import random

from lab.apiserver.resources import crd_object
from lab.apiserver.store import Event

from .drain import drain_and_delete
from .nodes import KERNEL_ANNOTATION, OS_IMAGE_ANNOTATION, node_manifest, node_ready
from .ownership import HASH_ALPHABET, scaled_count, template_hash

log = logging.getLogger("lab.kube")

GROUP, VERSION, PLURAL = "cluster.k8s.io", "v1alpha1", "machinedeployments"
MD_LABEL = "lab.kubermatic.io/machine-deployment"
HASH_LABEL = "lab.kubermatic.io/machine-template-hash"
PRINTER_COLUMNS = (
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Available-Replicas", "type": "integer", "jsonPath": ".status.availableReplicas"},
    {"name": "Provider", "type": "string", "jsonPath": ".spec.template.spec.providerSpec.value.cloudProvider"},
    {"name": "OS", "type": "string", "jsonPath": ".spec.template.spec.providerSpec.value.operatingSystem"},
    {"name": "Kubelet", "type": "string", "jsonPath": ".spec.template.spec.versions.kubelet"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def machine_deployment_crd() -> dict:
    return crd_object(GROUP, VERSION, "MachineDeployment", PLURAL, True, short_names=("md",),
                      printer_columns=PRINTER_COLUMNS, categories=("cluster-api",))


class MachineDeployments:
    def __init__(self, kube):
        self.kube = kube
        self.store = kube.store
        self.nodes_rt = kube.rt("", "nodes")
        self.draining: dict[str, asyncio.Task] = {}       # node -> its drain
        self.queue = kube.queue("machinedeployment", self.reconcile)

    @property
    def rt(self):
        return self.store.types.get((GROUP, PLURAL))

    def start(self) -> None:
        crd_rt = self.kube.rt("apiextensions.k8s.io", "customresourcedefinitions")
        if self.store.try_get(crd_rt, None, f"{PLURAL}.{GROUP}") is None:
            self.store.create(crd_rt, machine_deployment_crd())
        for md in self.store.items(self.rt):
            self.queue.add((md["metadata"]["namespace"], md["metadata"]["name"]))
        self.store.listen(GROUP, PLURAL, self._on_md)
        self.store.listen("", "nodes", self._on_node)

    def _on_md(self, event: Event) -> None:
        self.queue.add((event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))

    def _on_node(self, event: Event) -> None:
        md = (event.obj["metadata"].get("labels") or {}).get(MD_LABEL)
        if md and self.rt is not None:
            for obj in self.store.items(self.rt):
                if obj["metadata"]["name"] == md:
                    self.queue.add((obj["metadata"]["namespace"], md))

    def _nodes_of(self, name: str) -> list[dict]:
        return [n for n in self.store.items(self.nodes_rt) if (n["metadata"].get("labels") or {}).get(MD_LABEL) == name]

    def reconcile(self, key) -> None:
        md = self.store.try_get(self.rt, *key) if self.rt is not None else None
        nodes = self._nodes_of(key[1])
        if md is None or md["metadata"].get("deletionTimestamp"):
            for node in nodes:
                self._drain(key, node["metadata"]["name"])
            return
        spec = md.get("spec") or {}
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        h = template_hash(template)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = scaled_count(rolling.get("maxSurge", 1), replicas, round_up=True)
        unavailable = scaled_count(rolling.get("maxUnavailable", 0), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            surge = 1
        live = [n for n in nodes if n["metadata"]["name"] not in self.draining]
        updated = [n for n in live if n["metadata"]["labels"].get(HASH_LABEL) == h]
        old = [n for n in live if n["metadata"]["labels"].get(HASH_LABEL) != h]
        room = replicas + (surge if old else 0) - len(nodes)
        for _ in range(max(0, min(room, replicas - len(updated)))):
            self._create_node(md, h, template)
        # take nodes out while enough Ready ones remain: old ones first (not Ready before Ready), then surplus
        available = sum(1 for n in live if node_ready(n))
        surplus = max(0, len(live) - replicas)
        candidates = sorted(old, key=node_ready) + sorted(updated, key=node_ready)[:max(0, surplus - len(old))]
        for node in candidates:
            ready = node_ready(node)
            if ready and available <= replicas - unavailable:
                break
            if node in old or surplus > 0:
                self._drain(key, node["metadata"]["name"])
                available -= ready
                surplus -= 1
        self._write_status(md, h)

    def _create_node(self, md: dict, h: str, template: dict) -> None:
        tspec = template.get("spec") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        labels = {**((tspec.get("metadata") or {}).get("labels") or {}), MD_LABEL: md["metadata"]["name"],
                  HASH_LABEL: h}
        provider = ((tspec.get("providerSpec") or {}).get("value") or {})
        name = f"{md['metadata']['name']}-{h}-" + "".join(random.choice(HASH_ALPHABET) for _ in range(5))
        self.store.create(self.nodes_rt, node_manifest(
            name, labels=labels, os=provider.get("operatingSystem", "ubuntu"),
            kernel=annotations.get(KERNEL_ANNOTATION), os_image=annotations.get(OS_IMAGE_ANNOTATION),
            kubelet_version=(tspec.get("versions") or {}).get("kubelet", ""),
            annotations={"cluster.k8s.io/machine": f"{md['metadata']['namespace']}/{name}"}))

    def _drain(self, key, node: str) -> None:
        if node in self.draining:
            return
        task = asyncio.get_running_loop().create_task(drain_and_delete(self.kube, node))
        self.draining[node] = task

        def done(t: asyncio.Task) -> None:
            self.draining.pop(node, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("draining node %s failed: %s", node, t.exception())
            self.queue.add(key)
        task.add_done_callback(done)

    def _write_status(self, md: dict, h: str) -> None:
        nodes = self._nodes_of(md["metadata"]["name"])
        ready = sum(1 for n in nodes if node_ready(n))
        replicas = (md.get("spec") or {}).get("replicas", 1)
        status = {"observedGeneration": md["metadata"].get("generation", 1), "replicas": len(nodes),
                  "updatedReplicas": sum(1 for n in nodes if n["metadata"]["labels"].get(HASH_LABEL) == h),
                  "readyReplicas": ready, "availableReplicas": ready,
                  "unavailableReplicas": max(0, replicas - ready)}
        self.store.write_status(self.rt, md["metadata"]["namespace"], md["metadata"]["name"], status)
