"""Fault injection, per cluster, switchable at run time from tests and from the CLI.

API faults act on HTTP requests; behaviour faults are read by the simulated controllers.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields


@dataclass
class Faults:
    error_rate: float = 0.0              # fraction of API requests answered with one of error_codes
    error_codes: tuple[int, ...] = (500, 503)
    timeout_rate: float = 0.0            # fraction of API requests that hang for hang_seconds, then drop
    hang_seconds: float = 30.0
    latency: float = 0.0                 # wall seconds added to every API request
    reject_token: bool = False           # every token is refused (401), as with an expired token
    cni_never_ready: bool = False        # a newly deployed CNI's agents never become ready
    crashloop_after_restart: bool = False  # pods recreated after this is set crash-loop
    block_evictions: bool = False        # every eviction is refused by a disruption budget (429)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def update(self, **changes) -> None:
        names = {f.name for f in fields(self)} - {"rng"}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(names))}")
            if key == "error_codes":
                value = tuple(int(v) for v in value)
            setattr(self, key, value)

    def clear(self) -> None:
        self.update(**{k: v for k, v in asdict(Faults()).items() if k != "rng"})

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rng"}

    def pick_error(self) -> int | None:
        if self.error_rate and self.rng.random() < self.error_rate:
            return self.rng.choice(self.error_codes)
        return None

    def pick_hang(self) -> bool:
        return bool(self.timeout_rate) and self.rng.random() < self.timeout_rate
