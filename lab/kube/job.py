"""The Job controller: runs `parallelism` pods until `completions` of them succeeded, then completes."""

from __future__ import annotations

from lab.apiserver.disruption import pod_ready
from lab.apiserver.store import now_iso

from .ownership import OwnerController, is_active, owned, pod_from_template


class Jobs(OwnerController):
    kind, group, plural = "Job", "batch", "jobs"
    child_group, child_plural = "", "pods"

    def __init__(self, kube):
        super().__init__(kube)
        self.pods_rt = kube.rt("", "pods")

    def reconcile(self, key) -> None:
        job = self.store.try_get(self.rt, *key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, previous = job.get("spec") or {}, job.get("status") or {}
        finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                       for c in previous.get("conditions") or ())
        completions = spec.get("completions") or 1
        parallelism = spec.get("parallelism", 1)
        pods = owned(self.store, job, "Pod")
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in pods if is_active(p)]
        now = now_iso()
        done = finished or succeeded >= completions
        if done:
            for pod in active:
                self.store.delete(self.pods_rt, key[0], pod["metadata"]["name"])
            active = []
        elif not spec.get("suspend"):
            uid = job["metadata"]["uid"]
            labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": key[1],
                      "controller-uid": uid, "job-name": key[1]}
            for _ in range(min(parallelism, completions - succeeded) - len(active)):
                self.store.create(self.pods_rt, pod_from_template(job, spec.get("template") or {}, labels=labels),
                                  key[0])
            active = [p for p in owned(self.store, job, "Pod") if is_active(p)]
        status = {"startTime": previous.get("startTime", now), "uncountedTerminatedPods": {},
                  "ready": sum(1 for p in active if pod_ready(p)),
                  "terminating": sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))}
        for field, value in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if value:
                status[field] = value
        if done:
            status["completionTime"] = previous.get("completionTime", now)
            status["conditions"] = previous.get("conditions") if finished else [
                {"type": t, "status": "True", "reason": "CompletionsReached", "message": "Reached expected number "
                 "of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}
                for t in ("SuccessCriteriaMet", "Complete")]
        self.store.write_status(self.rt, key[0], key[1], status)
