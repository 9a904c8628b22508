"""The README's run command, `make run`, as a person uses it: on a copy of this checkout, up to the
banner, then Ctrl-C. The banner must list every DAG with no import error and a lab cluster to
migrate; Ctrl-C must leave no process behind and give every port back.

The copy shares this checkout's .venv (a symlink, so nothing is installed twice); everything else
`make run` writes (.airflow/, .lab/) lands in the copy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from scripts import airflow_home
from scripts.process_groups import free_port, ports_in_use
from tests.e2e.airflow_rest import AirflowREST

ROOT = airflow_home.ROOT
BANNER_END = "Ctrl-C stops the lab and Airflow."
MIGRATION_DAGS = {"kkp_cni_canal_to_cilium", "kkp_cni_cilium_to_canal", "kkp_proxy_mode", "kkp_fleet_rollout"}


def copy_checkout(target: Path) -> Path:
    """The files git knows of (tracked, or new and not ignored), mtimes kept, and a link to .venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


class MakeRun:
    """`make run` in its own session, as a terminal runs it; its output is kept line by line."""

    def __init__(self, checkout: Path, port: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(AIRFLOW_PORT=str(port),
                   # the log servers of the workers and the triggerer, off the ports other tests may hold
                   AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
                   AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["make", "run"], cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> float:
        """Seconds from the start until a line containing `text` was printed."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, f"make run exited with {self.proc.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout:.0f} s:\n{self.tail()}"
            time.sleep(0.5)
        return time.monotonic() - self.started

    def line(self, prefix: str) -> str:
        return next(line for line in self.lines if line.startswith(prefix))

    def tail(self, count: int = 60) -> str:
        return "\n".join(self.lines[-count:])

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the foreground process group (make and devstack)."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def kill(self) -> None:
        for process in [*self.processes(), psutil.Process(self.proc.pid)]:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass

    def processes(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


def running_in(checkout: Path) -> list[psutil.Process]:
    """Processes whose working directory is the copy: what `make run` started, even ones that left its tree."""
    found = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info["cwd"]
        if cwd and Path(cwd).is_relative_to(checkout) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def listening_ports(processes: list[psutil.Process]) -> set[int]:
    ports = set()
    for process in processes:
        try:
            ports |= {c.laddr.port for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return ports


@pytest.fixture
def checkout(tmp_path):
    target = copy_checkout(tmp_path / "checkout")
    stale = subprocess.run(["make", "-q", "install"], cwd=target, capture_output=True)
    assert stale.returncode == 0, ("the copy's `make install` is not up to date; run `make install` in "
                                   f"{ROOT} first, so that this test does not reinstall into the shared .venv")
    return target


def test_make_run_shows_the_dags_and_ctrl_c_stops_everything(checkout):
    port = free_port()
    run = MakeRun(checkout, port)
    try:
        seconds = run.wait_for(BANNER_END, 300)
        print(f"make run: banner after {seconds:.0f} s (install already done)")

        assert run.line("Airflow UI:").split()[-1] == f"http://localhost:{port}"
        dags = set(run.line("DAGs:").split(":", 1)[1].replace(",", " ").split())
        assert MIGRATION_DAGS <= dags, run.tail()
        assert run.line("Import errors:").split(":", 1)[1].strip() == "none", run.tail()
        assert not any(line.startswith("Not parsed yet") for line in run.lines), run.tail()
        cluster_hint = next(line for line in run.lines if "Set cluster_id to" in line)
        assert re.search(r"Set cluster_id to [a-z0-9]+ \(the lab's ", cluster_hint), cluster_hint

        # What the banner says, Airflow says too: the admin login works, the DAGs and the lab's connections are there.
        password = re.search(r"Login:\s+admin / (\S+)", run.line("Login:")).group(1)
        api = AirflowREST(f"http://localhost:{port}")
        api.login("admin", password)
        assert MIGRATION_DAGS <= set(api.dags()) and not api.import_errors()
        for conn_id in ("kkp_seed", "kkp_api"):
            assert api.call("GET", f"/api/v2/connections/{conn_id}")["connection_id"] == conn_id

        started = running_in(checkout) + run.processes()
        ports = listening_ports(started)
        assert port in ports, f"nothing of make run listens on {port}: {sorted(ports)}"

        run.ctrl_c()
        run.proc.wait(timeout=120)
        run.reader.join(timeout=10)
    except BaseException:
        run.kill()
        raise

    left = {p for p in started if alive(p)} | set(running_in(checkout))
    busy = ports_in_use(ports)
    for process in left:  # after a failed stop, the next test must not find them
        process.kill()
    said = "\n".join(run.lines)
    assert "stopped lab" in said and "stopped airflow" in said, run.tail()
    assert "still there" not in said, run.tail()
    assert not left, f"processes left after Ctrl-C: {sorted(p.pid for p in left)}"
    assert not busy, f"ports still listened on after Ctrl-C: {sorted(busy)}"


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
