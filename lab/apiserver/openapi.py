"""The slice of OpenAPI v3 that kubectl reads before it writes.

`kubectl create/apply/replace` validate manifests by default; they look up, per group-version,
whether the server's PATCH operations take the `fieldValidation` query parameter and then leave
validation to the server. Without any OpenAPI document they refuse to run ("failed to download
openapi"). The lab publishes only that: the objects' paths and their PATCH operations, no schemas.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable

from .resources import ResourceType

ROOT = "/openapi/v3"


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _object_path(rt: ResourceType) -> str:
    scope = "namespaces/{namespace}/" if rt.namespaced else ""
    return f"/{_gv_path(rt.group, rt.version)}/{scope}{rt.plural}/{{name}}"


def group_version_doc(served: Iterable[ResourceType], group: str, version: str) -> dict | None:
    """The document for one group-version, or None when nothing is served there."""
    paths = {}
    for rt in served:
        if rt.group != group or rt.version != version:
            continue
        paths[_object_path(rt)] = {"patch": {
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}},
        }}
    if not paths:
        return None
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"}, "paths": paths}


def discovery(served: Iterable[ResourceType]) -> dict:
    """`/openapi/v3`: one entry per served group-version, its URL carrying a hash of its content."""
    served = list(served)
    out = {}
    for gv in sorted({(rt.group, rt.version) for rt in served}):
        doc = group_version_doc(served, *gv)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        out[_gv_path(*gv)] = {"serverRelativeURL": f"{ROOT}/{_gv_path(*gv)}?hash={digest}"}
    return {"paths": out}
