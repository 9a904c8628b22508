"""Child programs run in their own process group, so stopping one stops everything it started.

`airflow standalone` starts the scheduler, dag-processor, api-server and triggerer, and those
start workers; the lab may start helpers too. Each program is the leader of a new session
(process group). Stopping signals the whole group plus any descendant that left it, waits,
then kills whatever is left, and tells which listening ports were given back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil


def say(text: str) -> None:
    """Print, but never fail: with `make run | tee log` and Ctrl-C, tee dies first, and a
    failing print must neither stop the shutdown nor the reader threads that drain the children's output."""
    try:
        print(text, flush=True)
    except (OSError, ValueError):
        pass


@dataclass
class Stopped:
    """What stopping a group did: the ports its processes listened on, and who needed SIGKILL."""

    name: str
    ports: set[int] = field(default_factory=set)
    killed: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)


class ProcessGroup:
    """One program and everything it starts; its output is echoed with a `name |` prefix.

    `expect` is a line prefix to watch for (a readiness line); `ready` is set when it appears.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str,
                 expect: str | None = None, echo=say):
        self.name = name
        self.expect = expect
        self.ready = threading.Event()
        self.ready_line = ""
        self._echo = echo
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
        )
        self.pgid = self.proc.pid
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self._echo(f"{self.name:8} | {line}")
            if self.expect and not self.ready.is_set() and line.startswith(self.expect):
                self.ready_line = line
                self.ready.set()

    def exited(self) -> int | None:
        """The leader's exit code, or None while it runs."""
        return self.proc.poll()

    def processes(self) -> list[psutil.Process]:
        """Live members of the group, plus descendants of the leader that moved to another group."""
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == self.pgid and _alive(proc):
                    found[proc.pid] = proc
            except (ProcessLookupError, psutil.Error):
                continue
        try:
            for proc in psutil.Process(self.proc.pid).children(recursive=True):
                if _alive(proc):
                    found.setdefault(proc.pid, proc)
        except psutil.Error:
            pass
        return list(found.values())

    def listening_ports(self) -> set[int]:
        return _listening_ports(self.processes())

    def stop(self, grace: float = 20.0) -> Stopped:
        """SIGTERM to the group and its strays, wait up to `grace` seconds, then SIGKILL the rest."""
        procs = self.processes()
        result = Stopped(self.name, ports=_listening_ports(procs))
        self._signal(procs, signal.SIGTERM)
        left = self._wait(procs, grace)
        if left:
            result.killed = [p.pid for p in left]
            self._signal(left, signal.SIGKILL)
            left = self._wait(left, 5.0)
        result.survivors = [p.pid for p in left]
        self._reader.join(timeout=2.0)
        return result

    def _signal(self, procs: list[psutil.Process], sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass
        for proc in procs:
            try:
                if os.getpgid(proc.pid) != self.pgid:
                    proc.send_signal(sig)
            except (ProcessLookupError, psutil.Error):
                continue

    def _wait(self, procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout
        while True:
            self.proc.poll()  # reap the leader, our own child
            left = [p for p in procs if _alive(p)]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.1)


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds no port and no memory; its parent reaps it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _listening_ports(procs: list[psutil.Process]) -> set[int]:
    ports = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        ports.update(c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN)
    return ports


def ports_in_use(ports: set[int]) -> set[int]:
    """Which of `ports` some process on this machine still listens on."""
    listening = {c.laddr.port for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    return ports & listening


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick), for a server about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
