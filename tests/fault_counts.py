"""Counting the faults the lab injects: the lab counts requests, not the answers it faked."""

from __future__ import annotations

from collections import Counter


def count_injections(faults, counts: Counter, where: str) -> None:
    """Count every error and reset `faults` (one lab target's Faults) hands out, as "<where> <code>"
    and "<where> reset", by wrapping its two dice."""
    pick_error, pick_hang = faults.pick_error, faults.pick_hang

    def error():
        code = pick_error()
        if code:
            counts[f"{where} {code}"] += 1
        return code

    def hang():
        hung = pick_hang()
        if hung:
            counts[f"{where} reset"] += 1
        return hung

    faults.pick_error, faults.pick_hang = error, hang
