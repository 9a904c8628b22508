"""List-then-watch caches over `kubernetes_asyncio`, and waiting for a condition on them.

This is what the deferrable triggers run: one list per resource, then a watch from its
resourceVersion, re-listing only on `410 Gone`; the condition is judged after every batch
of events, so a wait ends within one event of the condition becoming true, not a poll period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from .conditions import Progress
from .errors import MigrationError

log = logging.getLogger(__name__)
WATCH_SECONDS = 300


@dataclass(frozen=True)
class Watched:
    """A collection to keep in memory: REST path plus optional selectors."""

    path: str
    field_selector: str | None = None
    label_selector: str | None = None
    optional: bool = False        # a missing API (404, e.g. a CRD not installed yet) is an empty set


class Cache:
    def __init__(self, spec: Watched):
        self.spec = spec
        self.objects: dict[tuple[str, str], dict] = {}
        self.synced = False           # the first list has landed

    def values(self) -> list[dict]:
        return list(self.objects.values())

    def one(self) -> dict | None:
        return next(iter(self.objects.values()), None)

    def apply(self, kind: str, obj: dict) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj


async def _get(api, path: str, query: dict, timeout: float):
    """GET with the body left unread; an error answer raises ApiException (the client does that
    only for preloaded bodies, and a Status read as a list or an event would pass for data)."""
    params = [(k, v) for k, v in query.items() if v is not None]
    resp = await api.call_api(path, "GET", query_params=params, header_params={"Accept": "application/json"},
                              auth_settings=["BearerToken"], _preload_content=False,
                              _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=10,
                                                                     sock_read=timeout))
    if resp.status >= 300:
        async with resp:
            text = await resp.text()
        try:
            message = json.loads(text).get("message") or text
        except ValueError:
            message = text
        raise ApiException(status=resp.status, reason=message[:300])
    return resp


async def _list(api, cache: Cache) -> str:
    """Fill the cache from a paginated list; returns the resourceVersion to watch from. The pages
    land in a fresh cache, swapped in whole: a list cut short must not pass for the full set."""
    fresh = Cache(cache.spec)
    token, rv = None, "0"
    while True:
        try:
            resp = await _get(api, cache.spec.path, {
                "limit": 500, "continue": token, "fieldSelector": cache.spec.field_selector,
                "labelSelector": cache.spec.label_selector}, 30)
        except ApiException as exc:
            if exc.status == 404 and cache.spec.optional:
                cache.objects = {}
                return ""
            raise
        body = json.loads(await resp.read())
        for item in body.get("items") or []:
            fresh.apply("ADDED", item)
        rv = body["metadata"].get("resourceVersion", rv)
        token = body["metadata"].get("continue")
        if not token:
            cache.objects = fresh.objects
            return rv


async def _follow(api, cache: Cache, changed: asyncio.Event) -> None:
    """Keep the cache current forever: list, watch, re-list on 410 or a dropped stream."""
    backoff = 0.2
    while True:
        try:
            rv = await _list(api, cache)
            cache.synced = True
            changed.set()
            if rv == "":                       # optional API not served yet: look again shortly
                await asyncio.sleep(1.0)
                continue
            while True:
                resp = await _get(api, cache.spec.path, {
                    "watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                    "timeoutSeconds": WATCH_SECONDS, "fieldSelector": cache.spec.field_selector,
                    "labelSelector": cache.spec.label_selector}, WATCH_SECONDS + 30)
                async with resp:
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = event["type"], event["object"]
                        if kind == "ERROR":
                            raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if kind != "BOOKMARK":
                            cache.apply(kind, obj)
                            changed.set()
                backoff = 0.2
        except asyncio.CancelledError:
            raise
        except ApiException as exc:
            if exc.status not in (410, 404, 429, 500, 502, 503, 504, 0):
                raise MigrationError(f"Watching {cache.spec.path} answered {exc.status}: {exc.reason}; fix the "
                                     "credentials or permissions KKP's admin kubeconfig carries.") from None
            log.info("watch on %s ended (%s); listing again", cache.spec.path, exc.status)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.info("watch on %s dropped (%s); listing again", cache.spec.path, type(exc).__name__)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 5.0)


async def wait_for(api, watched: list[Watched], judge: Callable[[list[Cache]], Progress],
                   timeout: float, on_progress: Callable[[Progress], None] | None = None) -> Progress:
    """Watch `watched` until `judge` says done or `timeout` seconds pass; returns the last verdict."""
    caches = [Cache(w) for w in watched]
    changed = asyncio.Event()
    tasks = [asyncio.create_task(_follow(api, c, changed)) for c in caches]
    for t in tasks:
        t.add_done_callback(lambda _: changed.set())      # a watch that gave up ends the wait at once
    deadline = time.monotonic() + timeout
    verdict = Progress(False, "nothing observed yet")
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return verdict
            try:
                await asyncio.wait_for(changed.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                return verdict
            changed.clear()
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()
            if not all(c.synced for c in caches):
                continue
            verdict = judge(caches)
            if on_progress:
                on_progress(verdict)
            if verdict.done:
                return verdict
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def api_client(kubeconfig: dict):
    """A `kubernetes_asyncio` ApiClient for a kubeconfig dict (close it when done)."""
    from kubernetes_asyncio import client, config

    cfg = client.Configuration()
    await config.load_kube_config_from_dict(kubeconfig, client_configuration=cfg)
    return client.ApiClient(cfg)


async def wait_on_cluster(kubeconfig: dict, wait_name: str, args: dict, timeout: float, on_progress=None) -> Progress:
    """Open a client for the cluster and run one of the named waits (see waits.py) on it."""
    from .waits import build

    wait = build(wait_name, args)
    api = await api_client(kubeconfig)
    try:
        return await wait_for(api, wait.watched, wait.judge, timeout, on_progress)
    finally:
        await api.close()
