"""A controller's work queue: keys to reconcile, handled in batches so a burst of events costs one pass.

A key added many times before its batch runs is reconciled once. The gap between batches grows
with the time the last batch took, so a controller with a large object (a ReplicaSet of 5,000
pods) never spends more than about a third of the loop. Failed reconciles are retried with
backoff in simulated time, like a real controller's rate-limited queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Hashable

from lab.apiserver.errors import ApiError

log = logging.getLogger("lab.kube")

MIN_GAP = 0.002          # wall seconds between batches (batching, not simulated time)
RETRY_BASE = 1.0         # simulated seconds before the first retry of a failed key
RETRY_MAX = 60.0


class WorkQueue:
    def __init__(self, name: str, handler: Callable[[Hashable], None], clock):
        self.name = name
        self.handler = handler
        self.clock = clock
        self._pending: dict[Hashable, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._gap = MIN_GAP
        self._failures: dict[Hashable, int] = {}

    def add(self, key: Hashable) -> None:
        self._pending[key] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._gap, self._flush)

    def add_after(self, seconds: float, key: Hashable) -> None:
        """Reconcile `key` again after `seconds` of simulated time."""
        self.clock.later(seconds, self.add, key)

    def _flush(self) -> None:
        self._timer = None
        keys, self._pending = self._pending, {}
        started = time.perf_counter()
        for key in keys:
            try:
                self.handler(key)
                self._failures.pop(key, None)
            except ApiError as err:
                count = self._failures.get(key, 0) + 1
                self._failures[key] = count
                log.debug("%s: %s failed (%s), retrying", self.name, key, err)
                self.add_after(min(RETRY_BASE * 2 ** (count - 1), RETRY_MAX), key)
            except Exception:  # a bug in a controller must not stop the others
                log.exception("%s: reconciling %s failed", self.name, key)
        self._gap = max(MIN_GAP, 2 * (time.perf_counter() - started))
