"""A stand-in triggerer: one process, one event loop, running `kkp_migration.watch.wait_on_cluster`
(what every ClusterWaitTrigger runs) for each wait it is told about on stdin, one JSON per line:

    {"op": "wait", "id": ..., "kubeconfig": {...}, "wait": "cilium_ready", "args": {...}, "timeout": 60}
    {"op": "usage"}      -> {"event": "usage", "cpu_s": ..., "rss_kb": ...}
    {"op": "exit"}

and reporting on stdout: {"id", "event": "watching", "at"} once the wait has listed and judged,
{"id", "event": "done", "at", "done", "detail"} when it returns (`at` is time.time()).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time


def say(**msg) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def one_wait(cmd: dict) -> None:
    from kkp_migration.watch import wait_on_cluster

    seen = []

    def progress(p):
        if not seen:
            seen.append(True)
            say(id=cmd["id"], event="watching", at=time.time(), detail=p.detail)

    try:
        verdict = await wait_on_cluster(cmd["kubeconfig"], cmd["wait"], cmd.get("args") or {}, cmd["timeout"],
                                        progress)
        say(id=cmd["id"], event="done", at=time.time(), done=verdict.done, detail=verdict.detail)
    except Exception as exc:  # reported, so the benchmark names the failure instead of hanging
        say(id=cmd["id"], event="done", at=time.time(), done=False, detail=f"{type(exc).__name__}: {exc}")


async def main() -> None:
    import kkp_migration.watch  # noqa: F401  (imported before the baseline, as a triggerer has it)

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue = asyncio.Queue()

    def read():
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(commands.put_nowait, {"op": "exit"})
    threading.Thread(target=read, daemon=True).start()
    tasks = set()
    while True:
        cmd = await commands.get()
        if cmd["op"] == "exit":
            break
        if cmd["op"] == "usage":
            say(event="usage", cpu_s=time.process_time(), rss_kb=rss_kb(), tasks=len(tasks))
        elif cmd["op"] == "wait":
            task = asyncio.create_task(one_wait(cmd))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    for task in list(tasks):
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
