"""The Kubernetes REST API over aiohttp: discovery, CRUD, watch, subresources, tables.

Every cluster of the lab is served under its own path prefix, `/k8s/<cluster>`, on one port; a
kubeconfig's `server:` URL carries the prefix, as with proxies such as Rancher's.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING

from aiohttp import web

from lab import rbac

from . import errors, openapi, patch, protobuf, tables
from .disruption import budget_status, check_eviction, pod_ready
from .errors import ApiError
from .resources import ResourceType
from .selectors import field_selector_name, parse_field_selector, parse_label_selector, selector_from_label_selector
from .store import now_iso

if TYPE_CHECKING:
    from lab.cluster import Cluster

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
BOOKMARK_EVERY_S = 10.0


def _dump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj, status: int = 200) -> web.Response:
    return web.Response(body=_dump(obj), status=status, content_type=JSON)


def error_response(err: ApiError) -> web.Response:
    return json_response(err.status(), err.code)


class Route:
    """What a request path names: a discovery document, a collection, an object or a subresource.

    A resource path is parsed without looking its resource up (`plural`), as the API server does:
    a request is authorized before anyone asks whether its resource exists; `resolve` then finds it.
    """

    def __init__(self, plural: str | None = None, namespace: str | None = None, name: str | None = None,
                 sub: str | None = None, doc: str | None = None, group: str | None = None,
                 version: str | None = None):
        self.plural, self.namespace, self.name, self.sub = plural, namespace, name, sub
        self.doc, self.group, self.version = doc, group, version
        self.rt: ResourceType | None = None


def parse_path(tail: str) -> Route:
    parts = [p for p in tail.split("/") if p]
    if parts in (["version"], ["version", ""]):
        return Route(doc="version")
    if parts == ["api"]:
        return Route(doc="api")
    if parts == ["apis"]:
        return Route(doc="apis")
    if parts[:2] == ["openapi", "v3"]:
        gv = parts[2:]
        if gv[:1] == ["api"] and len(gv) == 2:
            return Route(doc="openapi", group="", version=gv[1])
        if gv[:1] == ["apis"] and len(gv) == 3:
            return Route(doc="openapi", group=gv[1], version=gv[2])
        if not gv:
            return Route(doc="openapi")
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        if len(parts) == 2:
            return Route(doc="group", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.not_found("path", "/" + tail)
    if not rest:
        return Route(doc="resources", group=group, version=version)
    namespace_sub = group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
    if rest[0] == "namespaces" and len(rest) >= 3 and not namespace_sub:
        return Route(rest[2], rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None,
                     group=group, version=version)
    return Route(rest[0], None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None,
                 group=group, version=version)


def resolve(cluster: "Cluster", route: Route) -> ResourceType:
    """The resource type a parsed path names, or the API server's 404 for one it does not serve."""
    rt = cluster.store.find(route.group, route.version, route.plural)
    if rt is None or (route.namespace is not None and not rt.namespaced):
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    route.rt = rt
    return rt


def _attributes(route: Route, verb: str, request: web.Request) -> rbac.Attributes:
    """The request as the authorizer sees it; a list or watch pinned to one name by a
    `metadata.name=` field selector carries that name, so `resourceNames` rules can allow it."""
    name = route.name
    if name is None and verb in ("list", "watch"):
        name = field_selector_name(request.query.get("fieldSelector"))
    return rbac.Attributes(request["lab_user"], verb, route.group, route.plural, route.sub, route.namespace, name)


# ---- discovery ---------------------------------------------------------------------------------------


def _resource_list(cluster: "Cluster", group: str, version: str) -> dict:
    resources = []
    for rt in cluster.store.served():
        if rt.group != group or rt.version != version:
            continue
        entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                 "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            if sub == "eviction":
                resources.append({"name": f"{rt.plural}/eviction", "singularName": "", "namespaced": True,
                                  "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
            elif sub == "scale":
                resources.append({"name": f"{rt.plural}/scale", "singularName": "", "namespaced": rt.namespaced,
                                  "group": "autoscaling", "version": "v1", "kind": "Scale",
                                  "verbs": ["get", "patch", "update"]})
            else:
                resources.append({"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": rt.kind, "verbs": ["get", "patch", "update"]})
    if not resources:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _groups(cluster: "Cluster") -> dict:
    seen: dict[str, list[str]] = {}
    for rt in cluster.store.served():
        if rt.group:
            versions = seen.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
    groups = []
    for g, versions in sorted(seen.items()):
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        groups.append({"name": g, "versions": vs, "preferredVersion": vs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _discovery(cluster: "Cluster", route: Route) -> dict:
    if route.doc == "version":
        return cluster.version_info()
    if route.doc == "api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if route.doc == "apis":
        return _groups(cluster)
    if route.doc == "openapi":
        if route.version is None:
            return openapi.discovery(cluster.store.served())
        doc = openapi.group_version_doc(cluster.store.served(), route.group, route.version)
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        return doc
    if route.doc == "group":
        for g in _groups(cluster)["groups"]:
            if g["name"] == route.group:
                return {"kind": "APIGroup", "apiVersion": "v1", **g}
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return _resource_list(cluster, route.group, route.version)


# ---- handlers ----------------------------------------------------------------------------------------


def _flag(query, name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends `True`)."""
    return query.get(name) in ("1", "t", "T", "true", "TRUE", "True")


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


async def _body(request: web.Request):
    raw = await request.read()
    if not raw:
        return None
    if request.content_type == PROTOBUF:
        return protobuf.decode(raw)
    try:
        return json.loads(raw)
    except ValueError:
        try:
            import yaml
            return yaml.safe_load(raw)
        except Exception:
            raise ApiError(400, "the body of the request could not be decoded as JSON or YAML") from None


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(after)}).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return tuple(data["start"])
    except Exception:
        raise ApiError(400, "continue key is not valid: illegal base64 data") from None


def _list(cluster: "Cluster", route: Route, request: web.Request) -> web.Response:
    store, rt, q = cluster.store, route.rt, request.query
    label_pred = parse_label_selector(q.get("labelSelector"))
    field_pred = parse_field_selector(q.get("fieldSelector"), rt.selectable_fields())
    objs = store.objects[rt.key]
    keys = sorted(k for k in objs if not route.namespace or k[0] == route.namespace)
    if q.get("continue"):
        start = _decode_continue(q["continue"])
        import bisect
        keys = keys[bisect.bisect_right(keys, start):]
    limit = int(q.get("limit") or 0)
    items, last, remaining = [], None, 0
    for i, k in enumerate(keys):
        obj = objs[k]
        if not label_pred(obj["metadata"].get("labels") or {}) or not field_pred(obj):
            continue
        if limit and len(items) >= limit:
            remaining = sum(1 for k2 in keys[i:] if label_pred(objs[k2]["metadata"].get("labels") or {})
                            and field_pred(objs[k2]))
            break
        items.append(obj)
        last = k
    meta = {"resourceVersion": str(store.current_rv)}
    if remaining:
        meta["continue"] = _encode_continue(store.current_rv, last)
        meta["remainingItemCount"] = remaining
    if _wants_table(request):
        return json_response(tables.to_table(rt, items, meta, q.get("includeObject")))
    return json_response({"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta, "items": items})


async def _watch(cluster: "Cluster", route: Route, request: web.Request) -> web.StreamResponse:
    store, rt, q = cluster.store, route.rt, request.query
    label_pred = parse_label_selector(q.get("labelSelector"))
    field_pred = parse_field_selector(q.get("fieldSelector"), rt.selectable_fields())
    if route.name:  # a watch on one object is a watch with metadata.name=<name>
        name = route.name
        field_pred = (lambda f: (lambda o: o["metadata"]["name"] == name and f(o)))(field_pred)
    resp = web.StreamResponse(headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"})
    try:
        watcher = store.watch(rt, route.namespace, label_pred, field_pred, q.get("resourceVersion"))
    except ApiError as err:
        if err.code != 410:
            raise
        await resp.prepare(request)
        await resp.write(_dump({"type": "ERROR", "object": err.status()}) + b"\n")
        return resp
    await resp.prepare(request)
    timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else 1800.0
    bookmarks = _flag(q, "allowWatchBookmarks")
    if _wants_table(request):  # `kubectl get -w` prints every event as a row of the same table
        def render(obj):
            return tables.to_table(rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                   q.get("includeObject"))
    else:
        def render(obj):
            return obj
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(watcher.queue.get(),
                                              min(remaining, BOOKMARK_EVERY_S) if bookmarks else remaining)
            except asyncio.TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    await resp.write(_dump({"type": "BOOKMARK", "object": {
                        "kind": rt.kind, "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(store.current_rv)}}}) + b"\n")
                continue
            if item is None:
                break
            chunk = [_dump({"type": item[0], "object": render(item[1])})]
            while not watcher.queue.empty() and len(chunk) < 500:
                nxt = watcher.queue.get_nowait()
                if nxt is None:
                    watcher.closed = True
                    break
                chunk.append(_dump({"type": nxt[0], "object": render(nxt[1])}))
            await resp.write(b"\n".join(chunk) + b"\n")
            if watcher.closed:
                break
    except ConnectionResetError:
        pass
    finally:
        store.unwatch(rt, watcher)
    return resp


def _delete_options(request: web.Request, body) -> dict:
    opts = dict(body or {})
    q = request.query
    if "gracePeriodSeconds" in q:
        opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if opts.get("orphanDependents") is True:
        opts.setdefault("propagationPolicy", "Orphan")
    return opts


def _audit_disruption(cluster: "Cluster", pod: dict) -> None:
    """A plain DELETE bypasses disruption budgets; record each one that takes a healthy pod from a
    budget with no disruption left, so tests and benchmarks can count what breaks budgets (deleting
    a pod that is not Ready takes nothing from a budget)."""
    store = cluster.store
    ns = pod["metadata"]["namespace"]
    if not pod_ready(pod):
        return
    labels = pod["metadata"].get("labels") or {}
    pods = store.items(store.rtype("", "pods"), ns)
    for pdb in store.items(store.rtype("policy", "poddisruptionbudgets"), ns):
        if selector_from_label_selector((pdb.get("spec") or {}).get("selector"))(labels) and \
                budget_status(pdb, pods)["disruptionsAllowed"] < 1:
            cluster.pdb_violations.append(f"{ns}/{pod['metadata']['name']}")
            return


def _do_delete(cluster: "Cluster", rt: ResourceType, ns, name, opts: dict) -> dict:
    pre = opts.get("preconditions") or {}
    obj = cluster.store.delete(rt, ns, name, propagation=opts.get("propagationPolicy"),
                               grace_seconds=opts.get("gracePeriodSeconds"), precondition_uid=pre.get("uid"),
                               precondition_rv=pre.get("resourceVersion"))
    return obj


def _scale_of(rt: ResourceType, obj: dict) -> dict:
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta.get("creationTimestamp")},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in
                                            ((obj.get("spec") or {}).get("selector", {}).get("matchLabels")
                                             or {}).items())}}


async def handle(cluster: "Cluster", request: web.Request, tail: str) -> web.StreamResponse:
    route = parse_path(tail)
    method = request.method
    if route.doc:
        if method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return json_response(_discovery(cluster, route))
    verb = _verb(method, route, request)
    cluster.authorize(_attributes(route, verb, request))
    rt, store = resolve(cluster, route), cluster.store
    cluster.count(verb, rt, route.sub)
    if route.sub and route.sub not in rt.subresources:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    body = await _body(request) if method in ("POST", "PUT", "PATCH", "DELETE") else None

    if route.name is None:
        if method == "GET":
            if _flag(request.query, "watch"):
                return await _watch(cluster, route, request)
            return _list(cluster, route, request)
        if method == "POST":
            if not isinstance(body, dict):
                raise ApiError(400, "the body of the request is not a Kubernetes object")
            if "status" in rt.subresources:  # clients cannot create status, only its subresource writes it
                body.pop("status", None)
                if rt.key == ("", "namespaces"):
                    body["status"] = {"phase": "Active"}
            if request.query.get("dryRun") == "All":
                return json_response(body, 201)
            return json_response(store.create(rt, body, route.namespace), 201)
        if method == "DELETE":
            label_pred = parse_label_selector(request.query.get("labelSelector"))
            field_pred = parse_field_selector(request.query.get("fieldSelector"), rt.selectable_fields())
            opts = _delete_options(request, body)
            gone = []
            for obj in list(store.items(rt, route.namespace)):
                if label_pred(obj["metadata"].get("labels") or {}) and field_pred(obj):
                    gone.append(_do_delete(cluster, rt, obj["metadata"].get("namespace"),
                                           obj["metadata"]["name"], opts))
            return json_response({"kind": rt.kind + "List", "apiVersion": rt.api_version,
                                  "metadata": {"resourceVersion": str(store.current_rv)}, "items": gone})
        raise ApiError(405, "the server does not allow this method on the requested resource")

    ns, name = route.namespace, route.name
    if route.sub == "eviction":
        if method != "POST":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        pod = store.get(rt, ns, name)
        if cluster.faults.block_evictions:
            raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.",
                           "TooManyRequests", {"causes": [{"reason": "DisruptionBudget", "message":
                                                           "lab fault injection: block_evictions"}]})
        pdb_rt = store.rtype("policy", "poddisruptionbudgets")
        taken = check_eviction(pod, store.items(pdb_rt, ns), now_iso(), lambda: store.items(rt, ns))
        _do_delete(cluster, rt, ns, name, (body or {}).get("deleteOptions") or {})
        if taken:  # after the delete, which may still refuse (a uid precondition)
            store.write_status(pdb_rt, ns, *taken)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)
    if route.sub == "scale":
        obj = store.get(rt, ns, name)
        if method == "GET":
            return json_response(_scale_of(rt, obj))
        scale = _scale_of(rt, obj)
        new_scale = patch.apply_patch(request.content_type, scale, body) if method == "PATCH" else body
        replicas = int(((new_scale or {}).get("spec") or {}).get("replicas", 0))
        obj = store.mutate(rt, ns, name, lambda o: o.setdefault("spec", {}).__setitem__("replicas", replicas))
        return json_response(_scale_of(rt, obj))
    if method == "GET":
        obj = store.get(rt, ns, name)
        if _wants_table(request):
            return json_response(tables.to_table(rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                                 request.query.get("includeObject")))
        return json_response(obj)
    if method == "PUT":
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request is not a Kubernetes object")
        meta = body.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = ns
        return json_response(store.update(rt, body, subresource=route.sub))
    if method == "PATCH":
        if not rt.builtin and request.content_type == patch.STRATEGIC:
            raise ApiError(415, "strategic merge patch is not supported for custom resources")
        current = store.get(rt, ns, name)
        patched = patch.apply_patch(request.content_type, current, body)
        if not isinstance(patched, dict):
            raise ApiError(422, "the patched object is not a Kubernetes object")
        patched.setdefault("metadata", {})["name"] = name
        sent_rv = ((body or {}).get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if not sent_rv:
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return json_response(store.update(rt, patched, subresource=route.sub))
    if method == "DELETE":
        if rt.key == ("", "pods"):
            _audit_disruption(cluster, store.get(rt, ns, name))
        obj = _do_delete(cluster, rt, ns, name, _delete_options(request, body))
        if store.try_get(rt, ns, name) is None:
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": name, "group": rt.group, "kind": rt.plural,
                                              "uid": obj["metadata"]["uid"]}})
        return json_response(store.get(rt, ns, name), 200)
    raise ApiError(405, "the server does not allow this method on the requested resource")


def _verb(method: str, route: Route, request: web.Request) -> str:
    if method == "GET":
        if _flag(request.query, "watch"):
            return "watch"
        return "get" if route.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return method.lower()
