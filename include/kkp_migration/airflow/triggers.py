"""The trigger behind every deferrable wait: watch a user cluster until a named condition holds.

It runs in the triggerer, holds no worker slot, and reaches the cluster the way the task did
(Connection -> KKP -> admin kubeconfig), so no credential is ever serialised into the trigger.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ClusterWaitTrigger(BaseTrigger):
    def __init__(self, *, wait: str, wait_args: dict, cluster_id: str, project_id: str | None, access: str,
                 seed_conn_id: str, api_conn_id: str, deadline: float):
        super().__init__()
        self.wait = wait
        self.wait_args = wait_args
        self.cluster_id = cluster_id
        self.project_id = project_id
        self.access = access
        self.seed_conn_id = seed_conn_id
        self.api_conn_id = api_conn_id
        self.deadline = deadline          # epoch seconds: a restarted triggerer does not extend the wait

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "wait": self.wait, "wait_args": self.wait_args, "cluster_id": self.cluster_id,
            "project_id": self.project_id, "access": self.access, "seed_conn_id": self.seed_conn_id,
            "api_conn_id": self.api_conn_id, "deadline": self.deadline})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ..watch import wait_on_cluster
        from .hooks import KkpHook, mask_kubeconfig

        started = time.time()
        try:
            hook = KkpHook(self.access, self.seed_conn_id, self.api_conn_id)
            kkp = await hook.akkp(self.cluster_id, self.project_id)
            kubeconfig = await asyncio.to_thread(kkp.admin_kubeconfig)
            mask_kubeconfig(kubeconfig)
            last = {"detail": ""}

            def progress(p):
                if p.detail != last["detail"]:
                    last["detail"] = p.detail
                    self.log.info("%s: %s", self.wait, p.detail)

            verdict = await wait_on_cluster(kubeconfig, self.wait, self.wait_args,
                                            max(0.0, self.deadline - time.time()), progress)
        except Exception as exc:  # the task, not the triggerer, decides what an error means
            from ..errors import BadInput, NeedsAttention
            yield TriggerEvent({"done": False, "error": f"{type(exc).__name__}: {exc}",
                                "permanent": isinstance(exc, (BadInput, NeedsAttention)),
                                "waited": time.time() - started})
            return
        yield TriggerEvent({"done": verdict.done, "detail": verdict.detail, "waited": time.time() - started,
                            "observed_at": time.time()})
