"""Bounded retries with exponential backoff and full jitter, for transient API faults only."""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from .errors import TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_transient(fn: Callable[[], T], *, what: str, attempts: int = 10, base: float = 0.2,
                    cap: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn` until it stops raising TransientError, at most `attempts` times (at most ~31 s of
    sleep). Ten, because a migration makes thousands of calls: with a fifth of them failing, six
    attempts lose about one call in 16,000 (a step retried by Airflow in most runs), ten one in 10
    million."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt == attempts:
                raise TransientError(f"{what} still failing after {attempts} attempts: {str(exc).rstrip('.')}.") from exc
            delay = random.uniform(0, min(cap, base * 2 ** attempt))
            log.warning("%s failed (%s); retry %d/%d in %.2fs", what, exc, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")
