"""The lab's control endpoint (not part of KKP): change faults and read cluster state at run time,
for `python -m lab fault` and `python -m lab status`. Bearer-authenticated with the control token.

A fault target is a user cluster (ID or name), `seed`, or `kkp` (the REST API). Besides the
fields of `lab.faults.Faults`, a user cluster takes `health.<component>=<HealthStatus...>`.
"""

from __future__ import annotations

import dataclasses
import json

from aiohttp import web

from lab.faults import Faults


def coerce(name: str, raw):
    """A fault value from its command-line spelling, typed like the `Faults` field."""
    field = {f.name: f for f in dataclasses.fields(Faults)}.get(name)
    if field is None or not isinstance(raw, str):
        return raw
    default = field.default if field.default is not dataclasses.MISSING else None
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"fault {name} takes true or false, not {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(int(v) for v in raw.split(",") if v)
    return raw


def set_faults(lab, target: str, changes: dict) -> dict:
    """Apply `changes` to `target`'s faults (runs on the lab's loop); returns the target's state."""
    kkp = lab.kkp
    if target == "kkp":
        kkp.faults.update(**{k: coerce(k, v) for k, v in changes.items()})
        return kkp.faults.as_dict()
    if target == "seed":
        lab.seed.faults.update(**{k: coerce(k, v) for k, v in changes.items()})
        return lab.seed.faults.as_dict()
    user = kkp.by_name(target)
    plain = {}
    for key, value in changes.items():
        if key.startswith("health."):
            kkp.set_health(user.id, key[len("health."):], value)
        else:
            plain[key] = coerce(key, value)
    user.api.faults.update(**plain)
    return {**user.api.faults.as_dict(), "health": dict(user.health_overrides)}


def status(lab) -> dict:
    """Clusters with their CNI, proxy mode, health and faults (runs on the lab's loop)."""
    kkp = lab.kkp
    store = lab.seed.store
    clusters = []
    for user in kkp.clusters.values():
        obj = store.try_get(store.rtype("kubermatic.k8c.io", "clusters"), None, user.id) or {}
        spec = obj.get("spec") or {}
        pods = user.store.items(user.store.rtype("", "pods"))
        clusters.append({
            "id": user.id, "name": user.spec.name, "project_id": user.project_id,
            "cni": spec.get("cniPlugin"), "proxyMode": (spec.get("clusterNetwork") or {}).get("proxyMode"),
            "konnectivityEnabled": (spec.get("clusterNetwork") or {}).get("konnectivityEnabled"),
            "labels": (obj.get("metadata") or {}).get("labels") or {},
            "deployed": {"cni": list(user.applied_cni), "proxyMode": user.applied_proxy_mode},
            "health": (obj.get("status") or {}).get("extendedHealth") or {},
            "pods": {"total": len(pods),
                     "running": sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")},
            "faults": user.api.faults.as_dict(),
        })
    return {"clusters": clusters, "kkp_faults": kkp.faults.as_dict(), "seed_faults": lab.seed.faults.as_dict()}


def make_app(lab, token: str) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "invalid control token"}, status=401)
        try:
            return await handler(request)
        except (KeyError, ValueError) as err:
            return web.json_response({"error": str(err).strip("'\"")}, status=400)

    async def get_status(request):
        return web.json_response(status(lab))

    async def post_faults(request):
        body = json.loads(await request.read() or b"{}")
        return web.json_response(set_faults(lab, body["target"], body.get("faults") or {}))

    app = web.Application(middlewares=[auth])
    app.router.add_get("/status", get_status)
    app.router.add_post("/faults", post_faults)
    return app
