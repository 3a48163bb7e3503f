"""The lab's web app: its routers, its page and draw pages, its guard; and `run`, which serves it until Ctrl+C."""

import asyncio
import contextlib

from fastapi import FastAPI

from mnistlab.core import addresses
from mnistlab.core.errors import ConfigError
from mnistlab.web import errors, guard, pages, server, templating
from mnistlab.web.lab import api_chapter, api_models, api_runs, api_site
from mnistlab.web.lab.datasets import parse_datasets
from mnistlab.web.lab.draw import DrawPages
from mnistlab.web.lab.service import Lab

PAGE = templating.LAB_PAGE
DEFAULT_PORT = addresses.LAB_PORT
DESCRIPTION = (
    "Launch, watch and open mnistlab runs. Every request needs the lab's token (?token=, then a cookie, or"
    ' Authorization: token T); every error is {"error": "...", "field": ...} (field: the launch field or'
    " config key at fault, or null)."
)


def create_app(lab, token=None, loopback_only=True, allowed_hosts=None):
    """The lab's web app over LAB (a `Lab`), started and stopped with the app (its lifespan).

    `token`: required of every request when given. `allowed_hosts`: the Host names answered
    (`guard.allowed_hosts_for`); by default the loopback names when `loopback_only` (a lab on a loopback
    address: no DNS rebinding), else any.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(lab.start)
        try:
            yield
        finally:
            await asyncio.to_thread(lab.stop)

    app = FastAPI(
        title="mnistlab lab", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.lab = lab  # what the routes serve (routing.the_lab)
    errors.install(app, log=lab.log)
    if allowed_hosts is None and loopback_only:
        allowed_hosts = guard.LOOPBACK_NAMES
    app.add_middleware(guard.Guard, allowed_hosts=allowed_hosts, token=token, same_origin=True)

    @app.get("/healthz", summary="liveness", responses=errors.ERROR_RESPONSES)
    def healthz():
        return {"status": "ok", "workers": lab.workers, "store": str(lab.store_path)}

    for router in (api_runs.router, api_models.router, api_chapter.router, api_site.router):
        app.include_router(router)
    app.mount("/draw", DrawPages(lab.models))
    pages.add_site(app, PAGE)
    return app


def run(
    host=addresses.DEFAULT_HOST,
    port=DEFAULT_PORT,
    workers=1,
    store_path=None,
    log=print,
    no_token=False,
    ray_address=None,
    datasets=None,
):
    """Serve the lab until interrupted (Ctrl+C: queued runs stay queued, runs in progress end interrupted)."""
    import uvicorn

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    token = guard.choose_token(host, no_token)
    datasets = parse_datasets(datasets)
    listening = server.bind(host, port)  # before anything is loaded: a busy port is one line, at once
    lab = Lab(store_path, workers=workers, log=log, ray_address=ray_address, datasets=datasets)
    allowed = guard.allowed_hosts_for(host)
    app = create_app(lab, token=token, loopback_only=allowed is not None, allowed_hosts=allowed)
    _say_where(log, host, port, token, lab, ray_address)

    class LabServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # At the signal, not after uvicorn's wait for open connections (the page's event stream
            # is always open): from now no worker takes a queued run, so queued runs stay queued.
            lab.stop_taking()
            super().handle_exit(sig, frame)

    LabServer(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[listening])


def _say_where(log, host, port, token, lab, ray_address):
    """The lines a starting lab prints: where to open it, and what anyone who can reach it may do."""
    address = f"http://{server.shown_host(host)}:{port}/"
    if not guard.is_loopback(host):
        log(f"warning: listening on {host}, reachable from other machines; every request needs the token")
    if token is None:
        log("warning: --no-token: any process or user of this machine can launch, cancel and read runs")
        log(f"open {address} (Ctrl+C stops; queued runs stay queued)")
    else:
        log(f"open {address}?token={token} (Ctrl+C stops; queued runs stay queued)")
    log(
        f"runs in {lab.store_path}, at most {lab.workers} training at once"
        + (f"; Ray runs on {ray_address}" if ray_address else "")
    )
