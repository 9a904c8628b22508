"""Pods by node and by namespace, kept current from store events, so no controller scans all pods."""

from __future__ import annotations

from collections import defaultdict

from lab.apiserver.store import Event, Store


class PodIndex:
    def __init__(self, store: Store):
        self.store = store
        self._pods = store.objects[("", "pods")]
        self._by_node: dict[str, set] = defaultdict(set)
        self._by_namespace: dict[str, set] = defaultdict(set)
        for key, pod in self._pods.items():
            self._add(key, pod)
        store.listen("", "pods", self._on_event)

    def _add(self, key, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._by_node[node].add(key)
        self._by_namespace[key[0]].add(key)

    def _discard(self, key, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._by_node[node].discard(key)
        self._by_namespace[key[0]].discard(key)

    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.old is not None:
            self._discard(key, event.old)
        if event.type != "DELETED":
            self._add(key, event.obj)

    def keys_on_node(self, node: str) -> list:
        return list(self._by_node.get(node, ()))

    def on_node(self, node: str) -> list[dict]:
        return [self._pods[k] for k in self._by_node.get(node, ()) if k in self._pods]

    def count_on_node(self, node: str) -> int:
        return len(self._by_node.get(node, ()))

    def in_namespace(self, namespace: str) -> list[dict]:
        return [self._pods[k] for k in self._by_namespace.get(namespace, ()) if k in self._pods]
