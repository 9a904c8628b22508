"""One cluster's objects, with the metadata rules, watches and garbage collection of a real API server.

Every method runs on the lab's event loop; nothing here blocks. Stored objects are never
mutated in place: every write stores a new dict, so events and watch history hold snapshots.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from . import errors
from .errors import ApiError
from .resources import BUILTIN, ResourceType, from_crd

HISTORY_PER_TYPE = 50_000
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"

Key = tuple[str, str]              # (group, plural)
ObjKey = tuple[str, str]           # (namespace or "", name)
RBAC_GROUP = "rbac.authorization.k8s.io"


def _name_problem(rt: ResourceType, name: str) -> str | None:
    """Why a name is invalid, in the API server's words. Names are DNS subdomains, except those of RBAC
    objects, which need only be a path segment (`system:controller:...`, `kkp-cni-migration:clusters`)."""
    if rt.group == RBAC_GROUP:
        if name in (".", ".."):
            return f'may not be \'{name}\''
        bad = next((c for c in "/%" if c in name), None)
        return f"may not contain '{bad}'" if bad else None
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character")
    return None


@dataclass(frozen=True)
class Event:
    type: str                      # ADDED / MODIFIED / DELETED
    rtype: ResourceType
    obj: dict
    old: dict | None
    rv: int


class Watcher:
    """A client watch: events for one resource type, filtered like the API server filters them."""

    def __init__(self, namespace: str | None, label_pred, field_pred):
        self.namespace = namespace
        self.label_pred = label_pred
        self.field_pred = field_pred
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False

    def matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        meta = obj["metadata"]
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return self.label_pred(meta.get("labels") or {}) and self.field_pred(obj)

    def offer(self, event: Event) -> None:
        """Translate a change into what this watcher sees (an object leaving its selection is DELETED)."""
        now, before = self.matches(event.obj), self.matches(event.old)
        if event.type == "DELETED":
            if now or before:
                self.queue.put_nowait(("DELETED", event.obj))
        elif now and before:
            self.queue.put_nowait(("MODIFIED", event.obj))
        elif now:
            self.queue.put_nowait(("ADDED", event.obj))
        elif before:
            self.queue.put_nowait(("DELETED", event.obj))

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    """The objects of one cluster, by resource type."""

    def __init__(self, name: str, clock, start_rv: int = 1000):
        self.name = name
        self.clock = clock
        self._rv = itertools.count(start_rv)
        self.current_rv = start_rv
        self.types: dict[Key, ResourceType] = {}
        self.objects: dict[Key, dict[ObjKey, dict]] = {}
        self.history: dict[Key, deque[Event]] = {}
        self.compacted: dict[Key, int] = {}
        self.watchers: dict[Key, list[Watcher]] = {}
        self.listeners: dict[Key, list[Callable[[Event], None]]] = {}
        self.admission: dict[Key, list[Callable]] = {}
        self.by_uid: dict[str, tuple[Key, ObjKey]] = {}
        self.dependents: dict[str, set[tuple[Key, ObjKey]]] = {}
        for rt in BUILTIN:
            self.register(rt)

    # ---- resource types -------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt
        self.objects.setdefault(rt.key, {})
        self.history.setdefault(rt.key, deque())
        self.compacted.setdefault(rt.key, 0)
        self.watchers.setdefault(rt.key, [])

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self.types.get((group, plural))
        if rt is None or rt.version != version:
            return None
        return rt

    def rtype(self, group: str, plural: str) -> ResourceType:
        return self.types[(group, plural)]

    def served(self) -> Iterable[ResourceType]:
        return self.types.values()

    # ---- hooks for controllers and admission ---------------------------------------------------

    def listen(self, group: str, plural: str, callback: Callable[[Event], None]) -> None:
        self.listeners.setdefault((group, plural), []).append(callback)

    def admit(self, group: str, plural: str, check: Callable) -> None:
        """`check(op, new, old)` may default fields of `new` or raise ApiError (a webhook)."""
        self.admission.setdefault((group, plural), []).append(check)

    def _run_admission(self, rt: ResourceType, op: str, new: dict | None, old: dict | None) -> None:
        for check in self.admission.get(rt.key, ()):
            check(op, new, old)

    # ---- reads -----------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self.objects[rt.key].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return obj

    def try_get(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        return self.objects[rt.key].get((namespace or "", name))

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[dict]:
        objs = self.objects[rt.key]
        if namespace:
            return [o for (ns, _), o in objs.items() if ns == namespace]
        return list(objs.values())

    def by_owner(self, owner_uid: str) -> list[dict]:
        out = []
        for key, okey in self.dependents.get(owner_uid, ()):
            obj = self.objects[key].get(okey)
            if obj is not None:
                out.append(obj)
        return out

    # ---- writes ------------------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.current_rv = next(self._rv)
        return self.current_rv

    def create(self, rt: ResourceType, obj: dict, namespace: str | None = None) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = namespace or meta.get("namespace") or ("default" if rt.namespaced else "")
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiError(400, "the namespace of the provided object does not match the namespace "
                                    "sent on the request")
            meta["namespace"] = ns
            ns_obj = self.try_get(self.types[("", "namespaces")], None, ns)
            if ns_obj is None:
                raise errors.not_found("namespaces", ns)
            if ns_obj["metadata"].get("deletionTimestamp"):
                raise ApiError(403, f'{rt.plural} "{meta.get("name") or meta.get("generateName") or ""}" is '
                                    f"forbidden: unable to create new content in namespace {ns} because it is "
                                    "being terminated", "Forbidden", {"name": meta.get("name", ""), "kind": rt.plural})
        else:
            meta.pop("namespace", None)
            ns = ""
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(rt, ns, meta["generateName"])
        name = meta.get("name") or ""
        if not name:
            raise errors.invalid(rt.kind, "", ["metadata.name: Required value: name or generateName is required"],
                                 rt.group)
        problem = _name_problem(rt, name)
        if problem:
            raise errors.invalid(rt.kind, name, [f"metadata.name: Invalid value: \"{name}\": {problem}"], rt.group)
        if (ns, name) in self.objects[rt.key]:
            raise errors.already_exists(rt.plural, name, rt.group)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        for drop in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(drop, None)
        self._run_admission(rt, "CREATE", obj, None)
        return self._store(rt, obj, None)

    def _generate_name(self, rt: ResourceType, ns: str, prefix: str) -> str:
        import random
        while True:
            name = prefix + "".join(random.choice(_NAME_SUFFIX) for _ in range(5))
            if (ns, name) not in self.objects[rt.key]:
                return name

    def update(self, rt: ResourceType, obj: dict, *, subresource: str | None = None,
               check_rv: bool = True) -> dict:
        """PUT semantics: optimistic concurrency on metadata.resourceVersion when the caller sent one."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace") or "" if rt.namespaced else ""
        old = self.get(rt, ns, meta.get("name", ""))
        sent_rv = meta.get("resourceVersion")
        if check_rv and sent_rv and str(sent_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, meta["name"], rt.group)
        new = self._merge_for_update(rt, old, obj, subresource)
        self._run_admission(rt, "UPDATE", new, old)
        return self._store(rt, new, old)

    def _merge_for_update(self, rt, old, obj, subresource):
        old_meta = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status")
            if new["status"] is None:
                new.pop("status")
            return new
        new = obj
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta = new["metadata"]
        for keep in ("uid", "creationTimestamp", "name", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if keep in old_meta:
                meta[keep] = old_meta[keep]
        if rt.namespaced:
            meta["namespace"] = old_meta["namespace"]
        if "status" in rt.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        gen = old_meta.get("generation", 1)
        meta["generation"] = gen + 1 if _spec_part(new) != _spec_part(old) else gen
        return new

    def write_status(self, rt: ResourceType, namespace: str | None, name: str, status: dict) -> dict:
        """Controllers' status write: no concurrency check, skipped when nothing changed."""
        old = self.get(rt, namespace, name)
        if old.get("status") == status:
            return old
        new = copy.copy(old)
        new["status"] = status
        new["metadata"] = dict(old["metadata"])
        return self._store(rt, new, old)

    def mutate(self, rt: ResourceType, namespace: str | None, name: str, fn: Callable[[dict], None]) -> dict:
        """Controllers' read-modify-write: `fn` edits a deep copy; no write when nothing changed."""
        old = self.get(rt, namespace, name)
        new = copy.deepcopy(old)
        fn(new)
        if new == old:
            return old
        gen = old["metadata"].get("generation", 1)
        new["metadata"]["generation"] = gen + 1 if _spec_part(new) != _spec_part(old) else gen
        self._run_admission(rt, "UPDATE", new, old)
        return self._store(rt, new, old)

    def _store(self, rt: ResourceType, obj: dict, old: dict | None) -> dict:
        meta = obj["metadata"]
        okey = (meta.get("namespace") or "", meta["name"])
        if (old is not None and meta.get("deletionTimestamp") and not meta.get("finalizers")
                and not meta.get("deletionGracePeriodSeconds") and rt.key != ("", "namespaces")):
            self._remove(rt, okey, obj)
            return obj
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        self.objects[rt.key][okey] = obj
        uid = meta["uid"]
        self.by_uid[uid] = (rt.key, okey)
        old_owners = {r["uid"] for r in (old["metadata"].get("ownerReferences") or [])} if old else set()
        new_owners = {r["uid"] for r in (meta.get("ownerReferences") or [])}
        for o in old_owners - new_owners:
            self.dependents.get(o, set()).discard((rt.key, okey))
        for o in new_owners - old_owners:
            self.dependents.setdefault(o, set()).add((rt.key, okey))
        self._emit(Event("MODIFIED" if old else "ADDED", rt, obj, old, rv))
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions") and old is None:
            self._establish_crd(obj)
        return obj

    def _emit(self, event: Event) -> None:
        hist = self.history[event.rtype.key]
        hist.append(event)
        if len(hist) > HISTORY_PER_TYPE:
            self.compacted[event.rtype.key] = hist.popleft().rv
        for w in self.watchers[event.rtype.key]:
            w.offer(event)
        for cb in self.listeners.get(event.rtype.key, ()):
            cb(event)

    # ---- deletion ------------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str | None, name: str, *, propagation: str | None = None,
               grace_seconds: int | None = None, precondition_uid: str | None = None,
               precondition_rv: str | None = None) -> dict:
        """DELETE: graceful for scheduled pods, finalizers honoured, dependents collected."""
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        if precondition_uid and precondition_uid != meta["uid"]:
            raise ApiError(409, f"Precondition failed: UID in precondition: {precondition_uid}, "
                                f"UID in object meta: {meta['uid']}", "Conflict")
        if precondition_rv and precondition_rv != meta["resourceVersion"]:
            raise ApiError(409, f"Precondition failed: ResourceVersion in precondition: {precondition_rv}, "
                                f"ResourceVersion in object meta: {meta['resourceVersion']}", "Conflict")
        self._run_admission(rt, "DELETE", None, obj)
        okey = (meta.get("namespace") or "", meta["name"])
        propagation = propagation or "Background"
        if propagation == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and self.dependents.get(meta["uid"]) and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        graceful = (rt.key == ("", "pods") and (obj.get("spec") or {}).get("nodeName")
                    and (grace_seconds is None or grace_seconds > 0)
                    and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        if finalizers or graceful or rt.key == ("", "namespaces"):
            if meta.get("deletionTimestamp"):
                return obj
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = now_iso()
            new["metadata"]["finalizers"] = finalizers
            if not finalizers:
                new["metadata"].pop("finalizers")
            if rt.key == ("", "namespaces"):
                new["status"] = {"phase": "Terminating"}
            if graceful:
                grace = grace_seconds if grace_seconds is not None else \
                    (obj["spec"].get("terminationGracePeriodSeconds") or 30)
                new["metadata"]["deletionGracePeriodSeconds"] = grace
            rv = self._next_rv()
            new["metadata"]["resourceVersion"] = str(rv)
            self.objects[rt.key][okey] = new
            self._emit(Event("MODIFIED", rt, new, obj, rv))
            if FOREGROUND in finalizers:
                self._collect_dependents(meta["uid"], propagation="Foreground")
            if rt.key == ("", "namespaces"):
                asyncio.get_running_loop().call_soon(self._empty_namespace, meta["name"])
            return new
        self._remove(rt, okey, obj)
        return obj

    def finish_graceful_delete(self, rt: ResourceType, namespace: str | None, name: str, uid: str) -> None:
        """What the kubelet does once a pod's containers stopped: the final delete."""
        obj = self.try_get(rt, namespace, name)
        if obj is not None and obj["metadata"]["uid"] == uid and not obj["metadata"].get("finalizers"):
            self._remove(rt, (namespace or "", name), obj)

    def _remove(self, rt: ResourceType, okey: ObjKey, obj: dict) -> None:
        if self.objects[rt.key].pop(okey, None) is None:
            return
        meta = obj["metadata"]
        uid = meta["uid"]
        self.by_uid.pop(uid, None)
        owners = [r["uid"] for r in (meta.get("ownerReferences") or [])]
        for o in owners:
            self.dependents.get(o, set()).discard((rt.key, okey))
        rv = self._next_rv()
        final = dict(obj)
        final["metadata"] = {**meta, "resourceVersion": str(rv)}
        self._emit(Event("DELETED", rt, final, obj, rv))
        loop = asyncio.get_running_loop()
        if self.dependents.get(uid):
            loop.call_soon(self._collect_dependents, uid, "Background")
        for o in owners:
            loop.call_soon(self._release_foreground_owner, o)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._drop_crd(obj)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for key, okey in list(self.dependents.pop(owner_uid, ())):
            rt = self.types.get(key)
            if rt and okey in self.objects[key]:
                self.mutate(rt, okey[0], okey[1], lambda o: o["metadata"].__setitem__(
                    "ownerReferences", [r for r in o["metadata"].get("ownerReferences") or []
                                        if r["uid"] != owner_uid]))

    def _collect_dependents(self, owner_uid: str, propagation: str) -> None:
        """The garbage collector: a dependent goes once none of its owners is left (or on foreground)."""
        for key, okey in list(self.dependents.get(owner_uid, ())):
            rt = self.types.get(key)
            obj = self.objects.get(key, {}).get(okey)
            if rt is None or obj is None:
                continue
            live_owner = any(r["uid"] != owner_uid and r["uid"] in self.by_uid
                             for r in obj["metadata"].get("ownerReferences") or [])
            if live_owner and propagation != "Foreground":
                continue
            self.delete(rt, okey[0] or None, okey[1], propagation=propagation)

    def _release_foreground_owner(self, owner_uid: str) -> None:
        loc = self.by_uid.get(owner_uid)
        if not loc:
            return
        key, okey = loc
        obj = self.objects[key].get(okey)
        if obj is None or FOREGROUND not in (obj["metadata"].get("finalizers") or []):
            return
        if any(self.objects[k].get(o) is not None for k, o in self.dependents.get(owner_uid, ())):
            return
        self.mutate(self.types[key], okey[0], okey[1], lambda o: o["metadata"].__setitem__(
            "finalizers", [f for f in o["metadata"]["finalizers"] if f != FOREGROUND]))

    def _empty_namespace(self, ns: str) -> None:
        for rt in list(self.types.values()):
            if rt.namespaced:
                for obj in self.items(rt, ns):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.delete(rt, ns, obj["metadata"]["name"], grace_seconds=0)
        remaining = any(self.items(rt, ns) for rt in self.types.values() if rt.namespaced)
        ns_rt = self.types[("", "namespaces")]
        obj = self.try_get(ns_rt, None, ns)
        if obj is None:
            return
        if remaining:
            asyncio.get_running_loop().call_later(0.05, self._empty_namespace, ns)
        else:
            self._remove(ns_rt, ("", ns), obj)

    # ---- CRDs ------------------------------------------------------------------------------------

    def _establish_crd(self, crd: dict) -> None:
        for rt in from_crd(crd):
            if rt.key not in self.types or not self.types[rt.key].builtin:
                self.register(rt)
        names = crd["spec"]["names"]
        status = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now_iso()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "lastTransitionTime": now_iso()},
            ],
        }
        asyncio.get_running_loop().call_soon(self._set_crd_status, crd["metadata"]["name"], status)

    def _set_crd_status(self, name: str, status: dict) -> None:
        rt = self.types[("apiextensions.k8s.io", "customresourcedefinitions")]
        if self.try_get(rt, None, name) is not None:
            self.write_status(rt, None, name, status)

    def _drop_crd(self, crd: dict) -> None:
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        rt = self.types.get(key)
        if rt is None or rt.builtin:
            return
        for okey, obj in list(self.objects[key].items()):
            self._remove(rt, okey, obj)
        for w in self.watchers.pop(key, []):
            w.close()
        del self.types[key]
        del self.objects[key]
        self.history.pop(key, None)

    # ---- watches ----------------------------------------------------------------------------------

    def watch(self, rt: ResourceType, namespace: str | None, label_pred, field_pred,
              resource_version: str | None) -> Watcher:
        """Start a watch; replays history after `resource_version`, or the current state when unset/0."""
        w = Watcher(namespace, label_pred, field_pred)
        if resource_version in (None, "", "0"):
            for obj in self.items(rt, namespace):
                if w.matches(obj):
                    w.queue.put_nowait(("ADDED", obj))
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError(400, f"invalid resource version {resource_version!r}") from None
            if since < self.compacted[rt.key]:
                raise errors.gone(f"too old resource version: {since} ({self.compacted[rt.key] + 1})")
            for event in self.history[rt.key]:
                if event.rv > since:
                    w.offer(event)
        self.watchers[rt.key].append(w)
        return w

    def unwatch(self, rt: ResourceType, w: Watcher) -> None:
        lst = self.watchers.get(rt.key)
        if lst and w in lst:
            lst.remove(w)

    def compact(self) -> None:
        """Forget all history (as etcd compaction does); older resourceVersions then get 410 Gone."""
        for key, hist in self.history.items():
            if hist:
                self.compacted[key] = hist[-1].rv
            hist.clear()
