"""The lab's HTTP front: every cluster's Kubernetes API on one port, KKP's REST API on another.

`LabServer` runs the event loop in a background thread so a test, a benchmark or the CLI can
start a lab, use it over HTTP, and reach into it (`call`) to inject faults or read its state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Callable

from aiohttp import web

from .apiserver import http as kube_http
from .apiserver.errors import ApiError

log = logging.getLogger("lab")


def kube_app(clusters: dict) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        cluster = clusters.get(request.match_info["cluster"])
        if cluster is None:
            return kube_http.error_response(ApiError(404, f"no lab cluster named {request.match_info['cluster']!r}"))
        faults = cluster.faults
        try:
            if faults.latency:
                await asyncio.sleep(faults.latency)
            if faults.pick_hang():
                await asyncio.sleep(faults.hang_seconds)
                raise ConnectionResetError
            user = cluster.authenticate(request.headers.get("Authorization"))
            if user is None:
                raise ApiError(401, "Unauthorized")
            request["lab_user"] = user
            code = faults.pick_error()
            if code:
                raise ApiError(code, f"lab fault injection: simulated {code}")
            return await kube_http.handle(cluster, request, request.match_info["tail"])
        except ApiError as err:
            return kube_http.error_response(err)
        except ConnectionResetError:
            if request.transport:
                request.transport.close()
            raise

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/k8s/{cluster}/{tail:.*}", dispatch)
    return app


class LabServer:
    """Serves a set of aiohttp apps on loopback ports from a background event-loop thread."""

    def __init__(self, host: str = "127.0.0.1", ssl_context=None):
        self.host = host
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="lab-loop", daemon=True)
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def call(self, fn: Callable, *args, timeout: float = 30.0):
        """Run `fn(*args)` on the lab's loop (a coroutine function is awaited) and return its result."""
        async def runner():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        fut: Future = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return fut.result(timeout)

    def serve(self, name: str, app: web.Application, port: int = 0) -> int:
        async def _serve():
            # handler_cancellation: a watch whose client went away ends (and stops collecting events)
            # at once instead of at its timeout; a short shutdown_timeout keeps stop() from waiting
            # on watches that clients keep open.
            runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                                   shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, self.host, port, backlog=1024, reuse_address=True,
                               ssl_context=self.ssl_context)
            await site.start()
            self._runners.append(runner)
            return site._server.sockets[0].getsockname()[1]
        self.ports[name] = self.call(_serve)
        return self.ports[name]

    def stop(self) -> None:
        async def _stop():
            for runner in self._runners:
                await runner.cleanup()
        if self._thread.is_alive():
            try:
                self.call(_stop, timeout=10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=10)
