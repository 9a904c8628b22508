"""Airflow on CeleryExecutor as local processes: docker-compose.yaml's topology without containers.

A throwaway PostgreSQL cluster (Debian's binaries, in a temp dir, trust auth on 127.0.0.1 only) holds
the metadata and Celery's results, a Redis without persistence is the broker, and the API server,
scheduler, dag-processor, triggerer and each Celery worker run as a process group of their own, so
one worker can be killed alone, as a lost machine would be. Every port (servers and log servers) is
picked free, so this never collides with `make run`, the standalone e2e tier or another Airflow on
the machine. The tests in tests/celery drive it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from scripts import airflow_home
from scripts.process_groups import ProcessGroup, Stopped, free_port, say

ROOT = airflow_home.ROOT
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 2
# The parts besides the workers, each `airflow <part>`, as docker-compose.yaml runs them.
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
WORKER_NAME = "KKP_CELERY_WORKER_NAME"
DATABASE = "airflow"


def worker_hostname() -> str:
    """The workers' `[core] hostname_callable`: the hostname a task instance records is its worker's
    name, as if each worker were a machine of its own (here they share one)."""
    return os.environ[WORKER_NAME]


def postgres_bindir() -> Path:
    """Where initdb and postgres are: on PATH, or Debian's /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not debian:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    return debian[-1].parent


class CeleryStack:
    """Start with `start()`, always `stop()`: PostgreSQL, Redis and every Airflow part, as process groups.

    `settings` are extra environment variables for every Airflow process (AIRFLOW__SECTION__KEY).
    """

    def __init__(self, home: Path, echo=say, settings: dict[str, str] | None = None):
        self.home = home
        self.echo = echo
        self.api_port = free_port()
        self.groups: dict[str, ProcessGroup] = {}
        self.killed: set[str] = set()
        self._settings = settings or {}
        self._scratch = Path(tempfile.mkdtemp(prefix="kkp-celery-"))   # PostgreSQL's data and socket, Redis's dir
        self.env: dict[str, str] = {}

    # ---- start -----------------------------------------------------------------------------------------

    def start(self) -> None:
        postgres_port, redis_port = self._start_postgres(), self._start_redis()
        self.env = self._airflow_env(postgres_port, redis_port)
        migrate = subprocess.run(["airflow", "db", "migrate"], env=self.env, cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}")
        for name in SERVICES:
            self._start(name, ["airflow", name], self.env)
        for name in WORKERS:
            self._start(name, ["airflow", "celery", "worker", "--celery-hostname", name,
                               "--concurrency", str(WORKER_CONCURRENCY), "--pid", str(self.home / f"{name}.pid")],
                        self._worker_env(name))

    def _start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.groups[name] = ProcessGroup(name, argv, env, str(cwd), echo=self.echo)

    def _start_postgres(self) -> int:
        """initdb and postgres as the `postgres` user when we are root (postgres refuses root)."""
        bindir = postgres_bindir()
        as_postgres = []
        if os.geteuid() == 0:
            shutil.chown(self._scratch, "postgres", "postgres")
            as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        data = self._scratch / "pgdata"
        initdb = subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", DATABASE,
                                 "-A", "trust", "-E", "UTF8", "--no-sync"], cwd=self._scratch, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if initdb.returncode:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout[-3000:]}")
        port = free_port()
        # Durability is worth nothing in a cluster thrown away after the test; speed is.
        self._start("postgres", [*as_postgres, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                                 "-h", "127.0.0.1", "-k", str(self._scratch), "-c", "fsync=off",
                                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    dict(os.environ), self._scratch)
        self._wait_for("postgres", lambda: self._database_created(port))
        return port

    def _database_created(self, port: int) -> bool:
        """Create Airflow's database; False while PostgreSQL does not take connections yet."""
        import psycopg2

        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=DATABASE, dbname="postgres", connect_timeout=2)
        except psycopg2.OperationalError:
            return False
        try:
            conn.autocommit = True
            conn.cursor().execute(f"CREATE DATABASE {DATABASE}")
        finally:
            conn.close()
        return True

    def _start_redis(self) -> int:
        import redis

        port = free_port()
        self._start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(self._scratch)], dict(os.environ), self._scratch)
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False
        try:
            self._wait_for("redis", answers)
        finally:
            client.close()
        return port

    def _wait_for(self, name: str, ready, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            code = self.groups[name].exited()
            if code is not None:
                raise RuntimeError(f"{name} exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} was not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def _airflow_env(self, postgres_port: int, redis_port: int) -> dict[str, str]:
        database = f"{DATABASE}@127.0.0.1:{postgres_port}/{DATABASE}"
        return {
            **airflow_home.isolated_env(self.home, self.api_port),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
            # Every part signs or checks the tokens tasks use against the Execution API with this.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **self._settings,
        }

    def _worker_env(self, name: str) -> dict[str, str]:
        return {**self.env, WORKER_NAME: name, "PYTHONPATH": str(ROOT),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}

    # ---- while it runs ---------------------------------------------------------------------------------

    def exited(self) -> dict[str, int]:
        """Parts that stopped on their own (a killed worker is not one), with their exit codes."""
        return {name: code for name, group in self.groups.items()
                if name not in self.killed and (code := group.exited()) is not None}

    def workers_answering(self) -> set[str]:
        """The Celery workers that answer a ping through the broker: the ones taking tasks."""
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        try:
            replies = app.control.ping(timeout=1.0)
        finally:
            app.close()
        return {node.split("@", 1)[-1] for reply in replies for node in reply}

    def kill(self, name: str) -> None:
        """SIGKILL a part and everything it started, at once, as a machine that dies would."""
        self.killed.add(name)
        for proc in self.groups[name].processes():
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass

    def restart(self, name: str) -> None:
        """Start a killed service again, as its supervisor (systemd, a Deployment) would."""
        self.groups[name].stop()            # reaps what the kill left
        self._start(name, ["airflow", name], self.env)
        self.killed.discard(name)

    # ---- stop ------------------------------------------------------------------------------------------

    def stop(self) -> list[Stopped]:
        """Every Airflow part at once (they hold connections to both), then Redis, then PostgreSQL;
        then the scratch dir."""
        airflow = [g for name, g in self.groups.items() if name not in ("redis", "postgres")]
        with ThreadPoolExecutor(max_workers=max(1, len(airflow))) as pool:
            stopped = list(pool.map(lambda g: g.stop(), airflow))
        stopped += [self.groups[name].stop() for name in ("redis", "postgres") if name in self.groups]
        shutil.rmtree(self._scratch, ignore_errors=True)
        return stopped
