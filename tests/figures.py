"""The reliability figures the README quotes: bad inputs tried and rejected before any write,
fault scenarios run and ended as promised (success, or a clear failure with the rollback conf),
API faults injected, pods without a controller lost.

Tests of the bad-input and fault suites call `bad_input()` / `fault()` with what they measured on
the lab; the session prints the totals at its end (tests/conftest.py), so `make figures` (those
suites alone) and `make test` (everything) both show them.
"""

from __future__ import annotations

BAD_INPUTS: list[dict] = []
FAULTS: list[dict] = []


def bad_input(name: str, rejected_before_write: bool, message: str) -> None:
    BAD_INPUTS.append({"name": name, "rejected": rejected_before_write, "message": message})


def fault(name: str, *, injected: int, as_promised: bool, pods_lost: int, pdb_violations: int = 0) -> None:
    """`injected`: faults the lab injected (API answers, or 1 for a behaviour fault such as a
    budget that blocks); `as_promised`: the run succeeded or failed with a sentence (and the
    rollback conf once the cluster was changed)."""
    FAULTS.append({"name": name, "injected": injected, "as_promised": as_promised, "pods_lost": pods_lost,
                   "pdb_violations": pdb_violations})


def summary() -> list[str]:
    if not (BAD_INPUTS or FAULTS):
        return []
    lines = []
    if BAD_INPUTS:
        rejected = sum(1 for b in BAD_INPUTS if b["rejected"])
        lines.append(f"bad inputs: {len(BAD_INPUTS)} tried, {rejected} rejected before any write to the lab")
    if FAULTS:
        kept = sum(1 for f in FAULTS if f["as_promised"])
        lines += [f"fault scenarios: {len(FAULTS)} run, {kept} ended as promised; "
                  f"{sum(f['injected'] for f in FAULTS)} faults injected",
                  f"pods without a controller lost: {sum(f['pods_lost'] for f in FAULTS)}; "
                  f"PodDisruptionBudgets broken: {sum(f['pdb_violations'] for f in FAULTS)}"]
    return lines
