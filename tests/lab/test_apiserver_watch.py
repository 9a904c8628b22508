"""Watches (sync and asyncio clients), 410 Gone after compaction, pagination, and a 5,000-pod list."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from tests.lab.apiserver_support import MERGE, api, crd, pod, u1  # noqa: F401  (fixtures)


def _watchers(lab, cluster, group: str, plural: str) -> int:
    return lab.call(lambda: len(cluster.store.watchers[(group, plural)]))


def _wait_until(predicate, what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _configmap(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": "0"}}


def test_watch_from_list_resource_version_replays_changes_in_order(u1, api):
    api.core.create_namespaced_config_map("default", _configmap("before"))
    rv = api.core.list_namespaced_config_map("default").metadata.resource_version
    api.core.create_namespaced_config_map("default", _configmap("cfg"))
    api.core.patch_namespaced_config_map("cfg", "default", {"data": {"v": "1"}}, _content_type=MERGE)
    api.core.delete_namespaced_config_map("cfg", "default")

    events = []
    for event in watch.Watch().stream(api.core.list_namespaced_config_map, "default", resource_version=rv,
                                      timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name, event["object"].data,
                       int(event["object"].metadata.resource_version)))
        if event["type"] == "DELETED":
            break
    assert [e[:3] for e in events] == [("ADDED", "cfg", {"v": "0"}), ("MODIFIED", "cfg", {"v": "1"}),
                                       ("DELETED", "cfg", {"v": "1"})]  # "before" is older than rv
    assert [e[3] for e in events] == sorted(e[3] for e in events) and events[0][3] > int(rv)


def test_live_watch_sees_changes_as_they_happen(lab, u1, api):
    rv = api.core.list_namespaced_config_map("default").metadata.resource_version
    seen: queue.Queue = queue.Queue()

    def consume():
        for event in watch.Watch().stream(api.core.list_namespaced_config_map, "default", resource_version=rv,
                                          timeout_seconds=10):
            seen.put((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    _wait_until(lambda: _watchers(lab, u1, "", "configmaps") == 1, "the watch to be registered")
    api.core.create_namespaced_config_map("default", _configmap("cfg"))
    assert seen.get(timeout=5) == ("ADDED", "cfg")
    api.core.patch_namespaced_config_map("cfg", "default", {"data": {"v": "1"}}, _content_type=MERGE)
    assert seen.get(timeout=5) == ("MODIFIED", "cfg")
    api.core.delete_namespaced_config_map("cfg", "default")
    assert seen.get(timeout=5) == ("DELETED", "cfg")
    reader.join(5)
    _wait_until(lambda: _watchers(lab, u1, "", "configmaps") == 0, "the watch to be dropped")


def test_watch_on_a_cluster_scoped_resource(u1, api):
    rv = api.core.list_node().metadata.resource_version
    api.core.create_node({"metadata": {"name": "n1"}})
    api.core.patch_node("n1", {"metadata": {"labels": {"zone": "a"}}}, _content_type=MERGE)
    api.core.delete_node("n1")
    events = []
    for event in watch.Watch().stream(api.core.list_node, resource_version=rv, timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name, event["object"].metadata.namespace,
                       event["object"].metadata.labels))
        if event["type"] == "DELETED":
            break
    assert events == [("ADDED", "n1", None, None), ("MODIFIED", "n1", None, {"zone": "a"}),
                      ("DELETED", "n1", None, {"zone": "a"})]


def test_watch_on_a_custom_resource(u1, api):
    api.crds.create_custom_resource_definition(crd())
    args = ("example.com", "v1", "default", "widgets")
    rv = api.custom.list_namespaced_custom_object(*args)["metadata"]["resourceVersion"]
    api.custom.create_namespaced_custom_object(*args, {"apiVersion": "example.com/v1", "kind": "Widget",
                                                       "metadata": {"name": "w1"}, "spec": {"size": 1}})
    api.custom.patch_namespaced_custom_object(*args, "w1", {"spec": {"size": 2}})
    api.custom.delete_namespaced_custom_object(*args, "w1")
    events = []
    for event in watch.Watch().stream(api.custom.list_namespaced_custom_object, *args, resource_version=rv,
                                      timeout_seconds=5):
        obj = event["object"]
        events.append((event["type"], obj["kind"], obj["metadata"]["name"], obj["spec"]))
        if event["type"] == "DELETED":
            break
    assert events == [("ADDED", "Widget", "w1", {"size": 1}), ("MODIFIED", "Widget", "w1", {"size": 2}),
                      ("DELETED", "Widget", "w1", {"size": 2})]


def test_label_selected_watch_sees_an_object_leave_and_rejoin(u1, api):
    api.core.create_namespaced_config_map("default", _configmap("cfg", {"app": "web"}))
    rv = api.core.list_namespaced_config_map("default", label_selector="app=web").metadata.resource_version
    api.core.patch_namespaced_config_map("cfg", "default", {"metadata": {"labels": {"app": "db"}}},
                                         _content_type=MERGE)
    api.core.patch_namespaced_config_map("cfg", "default", {"data": {"v": "2"}}, _content_type=MERGE)
    api.core.patch_namespaced_config_map("cfg", "default", {"metadata": {"labels": {"app": "web"}}},
                                         _content_type=MERGE)
    events = []
    for event in watch.Watch().stream(api.core.list_namespaced_config_map, "default", label_selector="app=web",
                                      resource_version=rv, timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.labels, event["object"].data))
        if len(events) == 2:
            break
    assert events == [("DELETED", {"app": "db"}, {"v": "0"}), ("ADDED", {"app": "web"}, {"v": "2"})]


def test_asyncio_client_watch(lab, u1):
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio import watch as async_watch

    async def scenario():
        cfg = client.Configuration()
        await config.load_kube_config_from_dict(u1.kubeconfig(), client_configuration=cfg)
        async with client.ApiClient(cfg) as api_client:
            core = client.CoreV1Api(api_client)
            rv = (await core.list_namespaced_pod("default")).metadata.resource_version
            events = []

            async def consume():
                async with async_watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=rv,
                                                      timeout_seconds=10) as stream:
                    async for event in stream:
                        events.append((event["type"], event["object"].metadata.name))
                        if event["type"] == "DELETED":
                            return

            reader = asyncio.create_task(consume())
            await asyncio.to_thread(_wait_until, lambda: _watchers(lab, u1, "", "pods") == 1,
                                    "the watch to be registered")
            await core.create_namespaced_pod("default", pod("p"))
            await core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"a": "b"}}},
                                            _content_type=MERGE)
            await core.delete_namespaced_pod("p", "default")
            await asyncio.wait_for(reader, 10)
            return events

    assert asyncio.run(scenario()) == [("ADDED", "p"), ("MODIFIED", "p"), ("DELETED", "p")]


def test_compacted_resource_version_is_410_gone_in_both_clients(lab, u1, api):
    from kubernetes_asyncio import client as aclient, config as aconfig
    from kubernetes_asyncio import watch as async_watch

    api.core.create_namespaced_config_map("default", _configmap("cfg"))
    old_rv = api.core.list_namespaced_config_map("default").metadata.resource_version
    api.core.patch_namespaced_config_map("cfg", "default", {"data": {"v": "1"}}, _content_type=MERGE)
    lab.call(u1.store.compact)

    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(api.core.list_namespaced_config_map, "default", resource_version=old_rv,
                                      timeout_seconds=5):
            pass
    assert err.value.status == 410 and err.value.reason.startswith("Expired: too old resource version")

    # as the API server does: the watch answers 200 and its one event is an ERROR carrying the Status
    raw = api.core.list_namespaced_config_map("default", watch=True, resource_version=old_rv, timeout_seconds=5,
                                              _preload_content=False)
    assert raw.status == 200
    event = json.loads(raw.data.splitlines()[0])
    assert event["type"] == "ERROR"
    assert {k: event["object"][k] for k in ("kind", "apiVersion", "status", "code", "reason")} == {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired"}
    assert event["object"]["message"].startswith(f"too old resource version: {old_rv} (")

    async def async_watch_old():
        cfg = aclient.Configuration()
        await aconfig.load_kube_config_from_dict(u1.kubeconfig(), client_configuration=cfg)
        async with aclient.ApiClient(cfg) as api_client:
            core = aclient.CoreV1Api(api_client)
            async with async_watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                  resource_version=old_rv, timeout_seconds=5) as stream:
                async for _ in stream:
                    pass

    with pytest.raises(Exception) as aerr:
        asyncio.run(async_watch_old())
    assert getattr(aerr.value, "status", None) == 410

    current = api.core.list_namespaced_config_map("default").metadata.resource_version
    fresh = watch.Watch().stream(api.core.list_namespaced_config_map, "default", resource_version=current,
                                 timeout_seconds=1)
    assert list(fresh) == []  # a current resourceVersion still watches fine


def test_timeout_seconds_ends_the_stream(lab, u1, api):
    rv = api.core.list_namespaced_config_map("default").metadata.resource_version
    started = time.monotonic()
    assert list(watch.Watch().stream(api.core.list_namespaced_config_map, "default", resource_version=rv,
                                     timeout_seconds=1)) == []
    assert time.monotonic() - started < 30  # ended by the server, not hung
    _wait_until(lambda: _watchers(lab, u1, "", "configmaps") == 0, "the watch to be dropped")


def test_watch_abandoned_by_its_client_is_dropped(lab, u1, api):
    resp = api.core.list_namespaced_config_map("default", watch=True, _preload_content=False)
    _wait_until(lambda: _watchers(lab, u1, "", "configmaps") == 1, "the watch to be registered")
    resp.close()
    resp.release_conn()
    _wait_until(lambda: _watchers(lab, u1, "", "configmaps") == 0, "the abandoned watch to be dropped")


def test_pagination_returns_every_object_exactly_once(lab, u1, api):
    store = u1.store

    def fill():
        rt = store.rtype("", "configmaps")
        for i in range(1200):
            store.create(rt, {"metadata": {"name": f"cm-{i:04d}", "namespace": "default"}})
    lab.call(fill)

    names, remaining, token = [], [], None
    while True:
        page = api.core.list_namespaced_config_map("default", limit=500, _continue=token)
        names += [c.metadata.name for c in page.items]
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert len(names) == 1200 and set(names) == {f"cm-{i:04d}" for i in range(1200)}
    assert remaining == [700, 200, None]


def test_list_of_5000_pods(lab, u1, api):
    store = u1.store

    def fill():
        rt = store.rtype("", "pods")
        for i in range(5000):
            store.create(rt, pod(f"pod-{i:05d}", labels={"app": f"a{i % 10}"}, node=f"node-{i % 50}"))
    lab.call(fill)

    started = time.monotonic()
    pods = api.core.list_pod_for_all_namespaces()
    took = time.monotonic() - started
    print(f"listing 5,000 pods through the kubernetes client took {took:.2f}s")
    assert len(pods.items) == 5000 and len({p.metadata.name for p in pods.items}) == 5000
    assert len(api.core.list_namespaced_pod("default", label_selector="app=a3").items) == 500
