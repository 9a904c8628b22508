"""`make run` must stop cleanly: no process left behind, every port given back."""

from __future__ import annotations

import os
import sys
import threading

import psutil

from scripts.process_groups import ProcessGroup, ports_in_use

# A leader that listens on a port and starts a child which leaves the process group and ignores
# SIGTERM: the worst case of what `airflow standalone` or the lab could leave behind.
PROGRAM = """
import socket, subprocess, sys, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
stray = subprocess.Popen([sys.executable, "-c", '''
import os, signal, time
os.setsid()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stray detached", flush=True)
time.sleep(600)
'''])
print("ready", server.getsockname()[1], stray.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_ends_the_group_and_its_strays_and_frees_their_ports(tmp_path):
    detached = threading.Event()

    def echo(line: str) -> None:
        if line.endswith("stray detached"):
            detached.set()

    group = ProcessGroup("demo", [sys.executable, "-c", PROGRAM], dict(os.environ), str(tmp_path),
                         expect="ready", echo=echo)
    try:
        assert group.ready.wait(30) and detached.wait(30), "the demo program never got going"
        port, stray_pid = (int(v) for v in group.ready_line.split()[1:])
        assert {p.pid for p in group.processes()} == {group.proc.pid, stray_pid}
        assert group.listening_ports() == {port}
        assert ports_in_use({port}) == {port}

        stopped = group.stop(grace=1.0)
    finally:
        if group.exited() is None:
            group.stop(grace=0.0)

    assert stopped.ports == {port}
    assert stopped.killed == [stray_pid]  # SIGTERM was ignored, so it took SIGKILL
    assert stopped.survivors == []
    assert group.exited() is not None and gone(stray_pid)
    assert ports_in_use({port}) == set()
