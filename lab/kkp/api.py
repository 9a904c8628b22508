"""KKP's REST API v2 (the dashboard's API) for the lab: bearer token, projects, clusters, health,
kubeconfig, machine deployments and CNI versions, with KKP's JSON error shape.

A PATCH copies only what KKP's handler copies onto the seed's Cluster and then goes through the
seed's store, so the `clusters.kubermatic.io` webhook judges it exactly as it judges `kubectl edit`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time

import yaml
from aiohttp import web

from lab.apiserver.errors import ApiError
from lab.apiserver.patch import merge_patch

from . import versions
from .usercluster import MD_GROUP, MD_PLURAL

PREFIX = "/api/v2"


class KkpError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _error(code: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=code)


def api_cluster(cluster: dict) -> dict:
    """The API's view of a seed Cluster object."""
    meta, spec, status = cluster["metadata"], cluster["spec"], cluster.get("status") or {}
    return {
        "id": meta["name"], "name": spec.get("humanReadableName", ""),
        "creationTimestamp": meta.get("creationTimestamp"), "type": "kubernetes",
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k != "project-id"},
        "annotations": dict(meta.get("annotations") or {}),
        "spec": {"cloud": copy.deepcopy(spec.get("cloud") or {}), "version": spec.get("version"),
                 "cniPlugin": copy.deepcopy(spec.get("cniPlugin")),
                 "clusterNetwork": copy.deepcopy(spec.get("clusterNetwork") or {}),
                 "exposeStrategy": spec.get("exposeStrategy"),
                 "enableUserSSHKeyAgent": spec.get("enableUserSSHKeyAgent"),
                 "containerRuntime": spec.get("containerRuntime"), "pause": spec.get("pause", False)},
        "status": {"version": (status.get("versions") or {}).get("controlPlane") or spec.get("version"),
                   "url": (status.get("address") or {}).get("url", ""),
                   "externalCCMMigration": "Unsupported"},
    }


def apply_api_patch(cluster: dict, patched: dict) -> dict:
    """Copy what KKP's PATCH handler takes from the patched API object onto the seed Cluster."""
    new = copy.deepcopy(cluster)
    meta, spec = new["metadata"], new["spec"]
    labels = dict(patched.get("labels") or {})
    if "project-id" in (cluster["metadata"].get("labels") or {}):
        labels["project-id"] = cluster["metadata"]["labels"]["project-id"]
    meta["labels"] = labels
    meta["annotations"] = dict(patched.get("annotations") or {})
    if not meta["annotations"]:
        meta.pop("annotations")
    pspec = patched.get("spec") or {}
    if pspec.get("version"):
        spec["version"] = pspec["version"]
    if pspec.get("cniPlugin") is None:
        spec.pop("cniPlugin", None)
    else:
        spec["cniPlugin"] = {"type": pspec["cniPlugin"].get("type"), "version": pspec["cniPlugin"].get("version")}
    pnet = pspec.get("clusterNetwork") or {}
    for field in ("proxyMode", "konnectivityEnabled"):
        if field in pnet:
            spec["clusterNetwork"][field] = pnet[field]
    return new


def make_app(kkp) -> web.Application:
    seed = kkp.seed.store

    def clusters_rt():
        return seed.rtype("kubermatic.k8c.io", "clusters")

    @web.middleware
    async def guard(request: web.Request, handler):
        faults = kkp.faults
        resource = request.match_info.route.resource
        kkp.requests[(request.method, resource.canonical if resource else request.path)] += 1
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.pick_hang():
            await asyncio.sleep(faults.hang_seconds)
            if request.transport:
                request.transport.close()
            raise ConnectionResetError
        header = request.headers.get("Authorization", "")
        if faults.reject_token or header != f"Bearer {kkp.token}":
            return _error(401, "invalid bearer token")
        code = faults.pick_error()
        if code:
            return _error(code, f"lab fault injection: simulated {code}")
        try:
            return await handler(request)
        except KkpError as err:
            return _error(err.code, err.message)
        except ApiError as err:
            return _error(err.code, err.message)
        except web.HTTPException as err:
            return _error(err.status, err.reason)

    def project(request: web.Request) -> str:
        project_id = request.match_info["project_id"]
        if project_id not in kkp.projects:
            raise KkpError(403, f'forbidden: The user doesn\'t belong to the given project = {project_id}')
        return project_id

    def seed_cluster(request: web.Request) -> dict:
        project_id = project(request)
        cluster_id = request.match_info["cluster_id"]
        obj = seed.try_get(clusters_rt(), None, cluster_id)
        if obj is None or (obj["metadata"].get("labels") or {}).get("project-id") != project_id:
            raise KkpError(404, f'Cluster.kubermatic.k8c.io "{cluster_id}" not found')
        return obj

    def user_cluster(request: web.Request):
        obj = seed_cluster(request)
        user = kkp.clusters.get(obj["metadata"]["name"])
        if user is None:
            raise KkpError(404, f'Cluster.kubermatic.k8c.io "{obj["metadata"]["name"]}" not found')
        return user

    async def list_projects(request):
        return web.json_response([{"id": pid, "name": name, "status": "Active"} for pid, name in kkp.projects.items()])

    async def list_clusters(request):
        project_id = project(request)
        items = [api_cluster(c) for c in seed.items(clusters_rt())
                 if (c["metadata"].get("labels") or {}).get("project-id") == project_id]
        return web.json_response({"clusters": items})

    async def get_cluster(request):
        return web.json_response(api_cluster(seed_cluster(request)))

    async def patch_cluster(request):
        current = seed_cluster(request)
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise KkpError(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise KkpError(400, "the request body must be a JSON merge patch object")
        patched = merge_patch(api_cluster(current), body)
        stored = seed.update(clusters_rt(), apply_api_patch(current, patched))
        return web.json_response(api_cluster(stored))

    async def health(request):
        obj = seed_cluster(request)
        return web.json_response(dict((obj.get("status") or {}).get("extendedHealth") or {}))

    async def kubeconfig(request):
        user = user_cluster(request)
        return web.Response(body=yaml.safe_dump(user.handed_out_kubeconfig()).encode(),
                            content_type="application/octet-stream",
                            headers={"Content-Disposition": f"attachment; filename=kubeconfig-admin-{user.id}"})

    def md_rt(user):
        rt = user.store.types.get((MD_GROUP, MD_PLURAL))
        if rt is None:
            raise KkpError(500, f"cluster {user.id} serves no {MD_PLURAL}.{MD_GROUP}")
        return rt

    def api_md(md: dict) -> dict:
        spec, tmpl = md.get("spec") or {}, ((md.get("spec") or {}).get("template") or {})
        provider = (((tmpl.get("spec") or {}).get("providerSpec") or {}).get("value") or {})
        return {"id": md["metadata"]["name"], "name": md["metadata"]["name"],
                "creationTimestamp": md["metadata"].get("creationTimestamp"),
                "annotations": dict(md["metadata"].get("annotations") or {}),
                "spec": {"replicas": spec.get("replicas", 0), "minReadySeconds": spec.get("minReadySeconds", 0),
                         "paused": spec.get("paused", False),
                         "template": {"operatingSystem": provider.get("operatingSystem"),
                                      "versions": (tmpl.get("spec") or {}).get("versions") or {},
                                      "labels": (tmpl.get("metadata") or {}).get("labels") or {},
                                      "annotations": (tmpl.get("metadata") or {}).get("annotations") or {}}},
                "status": dict(md.get("status") or {})}

    async def list_mds(request):
        user = user_cluster(request)
        return web.json_response([api_md(md) for md in user.store.items(md_rt(user), "kube-system")])

    async def restart_md(request):
        user = user_cluster(request)
        rt, name = md_rt(user), request.match_info["md_id"]
        if user.store.try_get(rt, "kube-system", name) is None:
            raise KkpError(404, f'MachineDeployment.cluster.k8s.io "{name}" not found')
        stamp = str(time.time_ns())

        def force_restart(md: dict) -> None:
            tmeta = md["spec"].setdefault("template", {}).setdefault("metadata", {})
            tmeta.setdefault("annotations", {})["forceRestart"] = stamp
        return web.json_response(api_md(user.store.mutate(rt, "kube-system", name, force_restart)))

    async def cni_versions(request):
        cni_type = request.match_info["cni_type"]
        if cni_type not in ("canal", "cilium"):
            raise KkpError(400, f'CNI plugin type "{cni_type}" not supported')
        return web.json_response({"cniPluginType": cni_type, "cniDefaultVersion": versions.default(cni_type),
                                  "versions": versions.supported(cni_type)})

    async def cluster_cni_versions(request):
        cni = seed_cluster(request)["spec"].get("cniPlugin") or {}
        cni_type, current = cni.get("type", ""), cni.get("version", "")
        reachable = [v for v in versions.allowed(cni_type) if v == current or versions.within_one_minor(current, v)]
        return web.json_response({"cniPluginType": cni_type,
                                  "versions": sorted(reachable, key=versions.parse)})

    app = web.Application(middlewares=[guard])
    base = PREFIX + "/projects/{project_id}/clusters"
    app.router.add_get(PREFIX + "/projects", list_projects)
    app.router.add_get(base, list_clusters)
    app.router.add_get(base + "/{cluster_id}", get_cluster)
    app.router.add_patch(base + "/{cluster_id}", patch_cluster)
    app.router.add_get(base + "/{cluster_id}/health", health)
    app.router.add_get(base + "/{cluster_id}/kubeconfig", kubeconfig)
    app.router.add_get(base + "/{cluster_id}/machinedeployments", list_mds)
    app.router.add_post(base + "/{cluster_id}/machinedeployments/{md_id}/restart", restart_md)
    app.router.add_get(base + "/{cluster_id}/cniversions", cluster_cni_versions)
    app.router.add_get(PREFIX + "/cni/{cni_type}/versions", cni_versions)
    return app
