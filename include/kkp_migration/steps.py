"""The runbook's steps as plain functions: each reads the cluster, acts once, returns what it
learned as JSON for XCom and the report. Each is idempotent: run again, same end state.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict

from . import checks, versions
from .errors import BadInput, MigrationError, NeedsAttention, NothingToDo
from .kkp import MIGRATION_LABEL, PROXY_MODE_CHANGE, ClusterInfo, KkpAccess
from .usercluster import UserCluster, pod_key

log = logging.getLogger(__name__)
CNI_NAMES = {"canal": "Canal", "cilium": "Cilium"}


def cluster_summary(info: ClusterInfo) -> dict:
    return asdict(info)


# ---- preflight ------------------------------------------------------------------------------------


def _original(info: ClusterInfo) -> dict:
    return {"cni_type": info.cni_type, "cni_version": info.cni_version, "proxy_mode": info.proxy_mode,
            "konnectivity": info.konnectivity}


def preflight(kkp: KkpAccess, user: UserCluster, *, source: str, target: str, target_version: str,
              proxy_mode_after: str = "keep", resume: dict | None = None) -> dict:
    """Step 0: everything checked, nothing changed. Raises NothingToDo or BadInput.

    `resume` is the cluster as the lock this run holds or takes over recorded it when the
    migration began: a cluster half-way from `source` is resumed from there, not taken for done."""
    info = kkp.get_cluster()
    resuming = bool(resume) and resume.get("cni_type") == source
    if resuming:
        log.warning("cluster %s was on %s %s when this migration began (as its lock records) and now says %s %s: "
                    "resuming from there", info.id, CNI_NAMES[source], resume.get("cni_version"),
                    CNI_NAMES.get(info.cni_type, info.cni_type), info.cni_version)
    elif info.cni_type == target and info.cni_version == target_version:
        raise NothingToDo(f"Cluster {info.id} already runs {CNI_NAMES[target]} {info.cni_version}; nothing to "
                          "migrate.")
    elif info.cni_type == target:
        raise NothingToDo(f"Cluster {info.id} already runs {CNI_NAMES[target]} {info.cni_version}; to change the "
                          f"{CNI_NAMES[target]} version, upgrade it in KKP instead of migrating.")
    elif info.cni_type != source:
        raise BadInput(f"Cluster {info.id} runs CNI '{info.cni_type or 'none'}', not {CNI_NAMES[source]}; this "
                       f"DAG migrates {CNI_NAMES[source]} clusters only.")
    original = resume if resuming else _original(info)
    if target_version not in versions.accepted(target):
        raise BadInput(f"{CNI_NAMES[target]} version {target_version!r} is not one KKP accepts; choose one of "
                       f"{', '.join(versions.supported(target))}.")
    too_old = versions.kubernetes_problems(target, target_version, info.kube_version)
    if too_old:
        raise BadInput(f"Cluster {info.id} runs Kubernetes {info.kube_version}, but {too_old[0]}; upgrade the "
                       f"cluster or choose another {CNI_NAMES[target]} version.")
    findings = checks.health(info)
    if original["cni_version"] not in versions.accepted(source):
        findings.append(checks.warning(f"Cluster {info.id} runs {CNI_NAMES[source]} {original['cni_version']}, a "
                                       "version this project has no object list for; removal will use the closest "
                                       "one."))
    if target == "cilium":
        findings += checks.cilium_kernels(info.id, user.nodes())
        findings += checks.proxy_mode_for_cilium(info, proxy_mode_after)
    elif info.proxy_mode == "ebpf":
        findings.append(checks.error(
            f"Cluster {info.id} runs kube-proxy mode ebpf, which Canal cannot work with; change it to iptables "
            "first with DAG kkp_proxy_mode (conf proxy_mode: iptables), then trigger this DAG again."))
    for f in findings:
        (log.error if f.level == "error" else log.warning)("%s", f.message)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise BadInput(errors[0].message)
    return {
        "cluster": cluster_summary(info),
        "original": original,
        "resumed": resuming,
        "target": {"cni_type": target, "cni_version": target_version},
        "findings": [f.as_dict() for f in findings],
    }


def preflight_proxy_mode(kkp: KkpAccess, mode: str, resume: dict | None = None) -> dict:
    """"Changing the Kube-Proxy Mode", checked before anything changes. `resume`: as in preflight()."""
    info = kkp.get_cluster()
    resuming = bool(resume) and resume.get("proxy_mode") not in (None, mode)
    if info.proxy_mode == mode and not resuming:
        raise NothingToDo(f"Cluster {info.id} already runs kube-proxy mode {mode}; nothing to change.")
    findings = checks.health(info)
    if mode == "ebpf" and info.cni_type != "cilium":
        findings.append(checks.error(f"Cluster {info.id} runs {CNI_NAMES.get(info.cni_type, info.cni_type)}: proxy "
                                     "mode ebpf works only with Cilium; migrate to Cilium first "
                                     "(kkp_cni_canal_to_cilium)."))
    if mode == "ebpf" and not info.konnectivity:
        findings.append(checks.error(f"Cluster {info.id}: proxy mode ebpf needs Konnectivity, which is disabled on "
                                     "this cluster; choose iptables."))
    if mode == "ipvs" and info.cni_type == "cilium":
        findings.append(checks.warning(checks.IPVS_WARNING))
    for f in findings:
        (log.error if f.level == "error" else log.warning)("%s", f.message)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise BadInput(errors[0].message)
    return {"cluster": cluster_summary(info), "original": resume if resuming else _original(info),
            "resumed": resuming, "target": {"proxy_mode": mode}, "findings": [f.as_dict() for f in findings]}


def verify_proxy_mode(kkp: KkpAccess, user: UserCluster, mode: str) -> dict:
    """What the runbook's step 3 checks by eye, checked: the mode is in effect everywhere."""
    from . import conditions
    info = kkp.get_cluster()
    problems = []
    if info.proxy_mode != mode:
        problems.append(f"the Cluster says proxy mode {info.proxy_mode}, not {mode}")
    kube_proxy = user.get("apps/v1", "daemonsets", "kube-proxy", "kube-system")
    if mode == "ebpf":
        if kube_proxy is not None:
            problems.append("the kube-proxy DaemonSet still runs although Cilium replaces it")
        config = user.get("v1", "configmaps", "cilium-config", "kube-system") or {}
        if (config.get("data") or {}).get("kube-proxy-replacement") != "true":
            problems.append("cilium-config does not say kube-proxy-replacement: true")
    else:
        have = conditions.proxy_mode_is(user.kube_proxy_configmap(), mode)
        rolled = conditions.daemonset_rolled(kube_proxy, "kube-system/kube-proxy")
        problems += [p.detail for p in (have, rolled) if not p.done]
    if info.cni_type == "cilium" and not user.cilium_state().done:
        problems.append(user.cilium_state().detail)
    return {"ok": not problems, "problems": problems, "cluster": cluster_summary(info)}


# ---- step 1 + 2: label and switch ----------------------------------------------------------------


def switch_cni(kkp: KkpAccess, cni_type: str, version: str, proxy_mode: str | None = None) -> dict:
    """Label the cluster unsafe-cni-migration and patch spec.cniPlugin, in one update; no-op if done."""
    info = kkp.get_cluster()
    if info.cni_type == cni_type and info.cni_version == version and (not proxy_mode or
                                                                       info.proxy_mode == proxy_mode):
        log.info("cluster %s already has CNI %s %s; not patching again", info.id, cni_type, version)
        return {"changed": False, "cni_type": cni_type, "cni_version": version,
                "switched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    labels = {} if MIGRATION_LABEL in info.labels else {MIGRATION_LABEL: "true"}
    after = kkp.update_cluster(labels=labels, cni=(cni_type, version),
                               proxy_mode=proxy_mode if proxy_mode and proxy_mode != info.proxy_mode else None)
    log.info("cluster %s: CNI %s %s -> %s %s", info.id, info.cni_type, info.cni_version, after.cni_type,
             after.cni_version)
    return {"changed": True, "cni_type": after.cni_type, "cni_version": after.cni_version,
            "switched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def set_proxy_mode(kkp: KkpAccess, mode: str) -> dict:
    """Runbook "Changing the Kube-Proxy Mode", steps 1-2; no-op when already set.

    The time of the change goes onto the Cluster with it (PROXY_MODE_CHANGE): what follows waits for
    pods newer than that, so a re-run must find the time of the change, not take its own."""
    info = kkp.get_cluster()
    if info.proxy_mode == mode:
        recorded = json.loads(info.annotations.get(PROXY_MODE_CHANGE) or "{}")
        changed_at = recorded.get("at", "") if recorded.get("mode") == mode else ""
        if not changed_at:
            log.warning("cluster %s already runs proxy mode %s, set outside this project: waiting for its state, "
                        "not for pods newer than a change", info.id, mode)
        return {"changed": False, "proxy_mode": mode, "previous": mode, "changed_at": changed_at}
    labels = {} if MIGRATION_LABEL in info.labels else {MIGRATION_LABEL: "true"}
    changed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kkp.update_cluster(labels=labels, proxy_mode=mode,
                       annotations={PROXY_MODE_CHANGE: json.dumps({"mode": mode, "at": changed_at})})
    return {"changed": True, "proxy_mode": mode, "previous": info.proxy_mode, "changed_at": changed_at}


# ---- step 3: restart pods ---------------------------------------------------------------------------


def plan_restart(user: UserCluster, target: str) -> dict:
    """The plan, with the manifests of the pods without a controller: kept where they outlive the
    restart's own try, so a try killed between deleting such a pod and creating it again is
    followed by one that brings it back."""
    from .restart import fresh_manifest
    plan = user.restart_plan(target).as_dict()
    bare = set(plan["without_controller"])
    plan["kept_manifests"] = [fresh_manifest(p) for p in user.pods() if pod_key(p) in bare]
    return plan


def restore_deleted_pods(user: UserCluster, manifests: list[dict], timeout: float = 120.0) -> list[str]:
    """Create again each kept pod that is gone or going (an earlier try deleted it and was
    interrupted); a pod still running is left alone."""
    restored = []
    for manifest in manifests:
        ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        pod = user.get("v1", "pods", name, ns)
        if pod is not None and not pod["metadata"].get("deletionTimestamp"):
            continue
        user.wait_gone([{"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns}], timeout)
        user.create_pod(manifest)
        restored.append(f"{ns}/{name}")
    if restored:
        log.warning("re-created pods without a controller that an interrupted try had deleted: %s", restored)
    return restored


def restart_pods(user: UserCluster, target: str, *, include_without_controller: bool, parallelism: int,
                 pdb_wait_seconds: float, kept_manifests: list[dict] = ()) -> dict:
    """Bring back included pods an interrupted try deleted, re-plan against the cluster as it is
    now (pods already on the target CNI are not touched again), then restart."""
    restored = restore_deleted_pods(user, list(kept_manifests)) if include_without_controller else []
    plan = user.restart_plan(target)
    plan.without_controller = [k for k in plan.without_controller if k not in restored]  # created just now
    log.info("restarting %d pods (%d without a controller %s); %d already on %s", len(plan.to_restart),
             len(plan.without_controller), "included" if include_without_controller else "left alone",
             plan.already_managed, CNI_NAMES[target])
    result = user.restart_pods(plan, include_without_controller=include_without_controller,
                               parallelism=parallelism, pdb_wait_seconds=pdb_wait_seconds)
    out = {"planned": len(plan.to_restart), "left_alone": [] if include_without_controller
           else plan.without_controller, "restored": restored, **result.as_dict()}
    if result.blocked:
        raise NeedsAttention(f"Cluster {user.cluster_id}: disruption budgets kept {len(result.blocked)} pod(s) from "
                             f"restarting ({'; '.join(f'{k}: {v}' for k, v in list(result.blocked.items())[:3])}); "
                             "wait until those workloads are healthy (or relax the PodDisruptionBudget), then clear "
                             "this task: pods already restarted are not restarted again.")
    if result.failed:
        error = MigrationError if result.retryable else NeedsAttention
        raise error(f"Cluster {user.cluster_id}: {len(result.failed)} pod(s) could not be restarted "
                    f"({'; '.join(f'{k}: {v}' for k, v in list(result.failed.items())[:3])}); "
                    + ("clear this task to retry them." if result.retryable else
                       "fix that first, then clear this task: pods already restarted are not restarted again."))
    return out


# ---- step 4: remove the old CNI ----------------------------------------------------------------------


def cni_objects(cni: str, version: str) -> list[dict]:
    """The objects KKP deployed for this CNI version (the lists ship with the project). For
    Cilium: the KKP object that manages it first, then the chart's objects, then what Cilium
    made at run time (its secrets and cilium.io CRDs)."""
    try:
        if cni == "canal":
            objs = versions.canal_objects(version)
        else:
            managed = versions.cilium_managed_by(version)
            objs = ([managed] if managed.kind == "ApplicationInstallation" else []) + \
                versions.cilium_objects(version) + versions.cilium_runtime_objects(version) + \
                [versions.KubeObject("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
                 for name in versions.cilium_runtime_crds(version)]
    except versions.VersionError as exc:
        raise BadInput(f"{CNI_NAMES[cni]} {version}: {exc}; this project cannot tell which objects to remove.") \
            from None
    return [{**o.to_dict(), "shared": o.shared} for o in objs]


def plan_removal(user: UserCluster, cni: str, version: str) -> dict:
    """Which of the old CNI's objects exist, and what its shared CRDs (not its own) still hold."""
    present = user.existing(cni_objects(cni, version))
    shared = {o["name"]: user.custom_objects_of(o["name"]) for o in present if o["shared"]}
    return {"cni": cni, "version": version, "objects": present, "shared_crds": shared}


def remove_cni(user: UserCluster, cni: str, version: str, *, keep_shared_crds: bool,
               uninstall_timeout: float = 300.0) -> dict:
    """Delete the old CNI's objects. A KKP Application that manages them goes first, and is
    waited for: while it exists KKP would re-install whatever else is deleted."""
    objects = user.existing(cni_objects(cni, version))
    apps = [o for o in objects if o["kind"] == "ApplicationInstallation"]
    if apps:
        user.delete_objects(apps)
        user.wait_gone(apps, uninstall_timeout)
        objects = user.existing([o for o in objects if o not in apps])
    kept = [o for o in objects if keep_shared_crds and o["shared"]]
    deleted, gone = user.delete_objects([o for o in objects if o not in kept])
    return {"deleted": [f"{o['kind']} {o['name']}" for o in apps] + deleted, "already_gone": gone,
            "kept": [o["name"] for o in kept]}


# ---- machine deployments --------------------------------------------------------------------------------


def restart_machine_deployments(kkp: KkpAccess, user: UserCluster, not_before_ns: int) -> dict:
    """Restart every MachineDeployment once per run: one already restarted at or after
    `not_before_ns` (this run's start) is not restarted again. The manifests of pods without a
    controller are kept first: draining a node deletes them, and nothing else would bring them back."""
    from .restart import fresh_manifest
    keep = [fresh_manifest(p) for p in user.pods_without_controller()]
    names, restarted = [], []
    for md in user.machine_deployments():
        name = md["metadata"]["name"]
        names.append(name)
        stamp = ((md.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations", {}).get(
            "forceRestart")
        if stamp and stamp.isdigit() and int(stamp) >= not_before_ns:
            continue
        kkp.restart_machine_deployment(name)
        restarted.append(name)
    return {"machine_deployments": names, "restarted": restarted, "since_ns": not_before_ns,
            "pods_without_controller": keep}


def recreate_missing_pods(user: UserCluster, manifests: list[dict]) -> dict:
    """Create again each kept pod that is gone (a drained node took it); present ones are left alone."""
    present = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in user.pods()}
    recreated = []
    for manifest in manifests:
        key = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
        if key not in present:
            user.create_pod(manifest)
            recreated.append(key)
    log.info("pods without a controller re-created after the machine roll: %s", recreated or "none")
    return {"recreated": recreated, "kept": len(manifests)}


# ---- verification ---------------------------------------------------------------------------------------


def verify(kkp: KkpAccess, user: UserCluster, cni: str, old_cni: str | None, old_version: str | None,
           left_alone: list[str] = (), settle_seconds: float = 60.0) -> dict:
    """Runbook step 7, checked rather than eyeballed. Pods the approver chose to leave alone are
    reported, not counted as failures. Pods re-created a moment ago (after the machine roll) take a
    while to run, so a failing check is repeated for up to `settle_seconds` before it counts."""
    deadline = time.monotonic() + settle_seconds
    while not (result := _verify_once(kkp, user, cni, old_cni, old_version, left_alone))["ok"] \
            and time.monotonic() < deadline:
        time.sleep(2)
    return result


def _verify_once(kkp: KkpAccess, user: UserCluster, cni: str, old_cni: str | None, old_version: str | None,
                 left_alone: list[str]) -> dict:
    info = kkp.get_cluster()
    problems = []
    if info.cni_type != cni:
        problems.append(f"the Cluster says CNI {info.cni_type}, not {cni}")
    nodes = user.nodes()
    not_ready = [n["metadata"]["name"] for n in nodes if not any(
        c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or [])]
    if not_ready:
        problems.append(f"nodes not Ready: {', '.join(not_ready)}")
    pods = user.pods()
    bad = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods
           if (p.get("status") or {}).get("phase") not in ("Running", "Succeeded")
           and f"{p['metadata']['namespace']}/{p['metadata']['name']}" not in left_alone]
    if bad:
        problems.append(f"{len(bad)} pods not Running ({', '.join(bad[:5])})")
    from .conditions import pods_managed
    managed = pods_managed(pods, cni, user.cilium_endpoints(), frozenset(left_alone))
    if not managed.done:
        problems.append(managed.detail)
    leftovers = []
    if old_cni and old_version:
        leftovers = [f"{o['kind']} {o['name']}" for o in user.existing(cni_objects(old_cni, old_version))
                     if not o["shared"]]
        if leftovers:
            problems.append(f"{len(leftovers)} {CNI_NAMES[old_cni]} objects left ({', '.join(leftovers[:5])})")
    return {"ok": not problems, "problems": problems, "managed": managed.detail, "nodes": len(nodes),
            "pods": len(pods), "left_alone": list(left_alone), "cluster": cluster_summary(info)}
