"""Rows of the results table, target verdicts, the machine line, and the markdown table."""

from __future__ import annotations

import datetime
import os
import platform
import sys


def row(bench: str, what: str, value: str, target: str = "", verdict: str = "") -> dict:
    return {"bench": bench, "what": what, "value": value, "target": target, "verdict": verdict}


def at_least(value: float, target: float, unit: str = "") -> str:
    """'met' or 'MISSED by N%' for a number that should reach `target`."""
    if value >= target:
        return "met"
    return f"MISSED by {target - value:.3g}{unit}: {value:.3g}{unit} against {target:g}{unit}"


def at_most(value: float, target: float, unit: str = "") -> str:
    """'met' or 'MISSED by N%' for a number that should stay under `target`."""
    if value <= target:
        return "met"
    return f"MISSED by {value - target:.3g}{unit}: {value:.3g}{unit} against {target:g}{unit}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(), "python": sys.version.split()[0],
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_at_start": round(load, 2)}


def markdown(rows: list[dict], host: dict, seconds: float) -> str:
    lines = [f"Machine: {host['nproc']} cores, {host['cpu']}, Python {host['python']}, {host['date']}, "
             f"load average {host['load_at_start']} at start; whole run {seconds:.0f} s.", "",
             "| # | what | result | target | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [r["bench"], r["what"], r["value"], r["target"], r["verdict"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
