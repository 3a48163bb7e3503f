"""The draw-a-digit web page and its JSON API (FastAPI).

    GET  /             the page: draw with mouse, pen or touch, or drop an image
    POST /api/predict  image bytes, or JSON {"pixels": 28x28 numbers in [0, 1]}
    POST /api/explain  the same input; each model's inside (layer views, attributions, the RNN's reading)
    GET  /api/models   the loaded models
    GET  /healthz      each worker's health: 503 when one does not answer within a second
    GET  /openapi.json, /docs   the schema

Every bad request gets a 4xx with {"error": "...", "field": ...}; the page and the CLI use
the same preprocessing (`mnistlab.ml.preprocess.to_mnist`), within the server's
bounds per request (`mnistlab.ml.preprocess.SERVER`). Listening on a loopback
address, the server answers only requests that name it by a loopback name.
"""

import asyncio
import contextlib
import errno
import pathlib
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab.core.errors import ConfigError, MnistlabError, RequestError
from mnistlab.ml import preprocess
from mnistlab.serving import batching
from mnistlab.serving.engine import Engine, error_reply, internal_error_reply, load_predictors

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop up to this much of an oversized body, then answer 413
# Measured by benchmarks/serve_load.py (BENCHMARKS.md): the workers that served the most.
DEFAULT_WORKERS = 2
# A refused upload too large to read is answered after this pause: it costs the server nothing (the event loop
# serves the others meanwhile), and a client that sends such uploads again and again is slowed to its pace.
REFUSAL_PAUSE_SECONDS = 0.05
PAGE = pathlib.Path(__file__).parent / "index.html"
STATIC = pathlib.Path(__file__).parent / "static"  # what the draw page and the lab load alike (the inside view)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


API_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mnistlab API</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto">
<h1>mnistlab API</h1>
<p>The schema is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3): load it into any OpenAPI viewer.
This page is served from here, with nothing fetched from elsewhere, so it works offline.</p>
<ul>
<li><code>POST /api/predict</code>: image bytes (IMAGES_READ) or JSON <code>{"pixels": 28x28 numbers}</code>;
the answer has the 28x28 input and each model's probabilities. Bad input gets a 4xx with <code>{"error": "...", "field": null}</code>.</li>
<li><code>POST /api/explain</code>: the same input and errors; per model the inside: each layer's activations or feature maps,
the first layer's templates or kernels, the RNN's belief after each row, and attribution maps for the predicted class and the runner-up.
Large arrays come as <code>{"shape", "min", "max", "uint8"}</code>: base64 bytes scaled from min to max.</li>
<li><code>GET /api/models</code>: the models served, with their settings and test accuracy.</li>
<li><code>GET /healthz</code>: each worker's health; 503 when one of them does not answer within a second.</li>
</ul></body></html>""".replace(
    "IMAGES_READ",
    f"{preprocess.SERVER.formats_named} up to {preprocess.SERVER.pixels:,} pixels, a JPEG photo up to {preprocess.SERVER.jpeg_pixels // 1_000_000} megapixels, or a .npy array; "
    "mnistlab predict FILE reads larger images and GIF, TIFF, BMP too",
)


# Both endpoints take the same input: image bytes or JSON pixels.
IMAGE_REQUEST = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "pixels": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
                    },
                    "required": ["pixels"],
                }
            },
        },
    }
}


def create_app(predictors=None, chosen_by=None, warm=True, pool=None, allowed_hosts=None):
    """The app serving `predictors` (a list of mnistlab.ml.predict.Predictor) in this process, or a `pool`.

    `chosen_by`: how the runs were picked, shown on the page (e.g. "best validation accuracy in the store").
    `warm`: compile every model for every batch size now (seconds), not in front of the first visitors.
    `pool`: a started `mnistlab.serving.workers.WorkerPool`, whose processes hold the models instead.
    `allowed_hosts`: the host names a request's Host header may give (`HostCheck`); None, any
    (the lab, which mounts this app under /draw/, checks them itself).
    """
    # The interactive /docs of FastAPI loads Swagger UI from a CDN, blank offline: a local page instead.
    app = FastAPI(
        title="mnistlab",
        version="1",
        description="Draw a digit; see what the MLP, CNN and RNN make of it.",
        docs_url=None,
        redoc_url=None,
        lifespan=_closing(pool),
    )
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)
    if pool is None:
        engine = Engine(predictors, warm=warm)
        app.state.engine = engine
        app.state.batcher, app.state.explanations = engine.batcher, engine.explanations  # tests read how it batched
        app.state.explainer = engine.explainer

        async def answer(kind, client, body, content_type):
            # One trip to a worker thread per request: decoding, preprocessing and the three
            # models together (a hop per model cost more than the models themselves).
            return await run_in_threadpool(engine.answer, kind, client, body, content_type)

        def describe():
            return engine.describe()

        async def health():
            return {"counts": engine.counts()}
    else:
        app.state.pool = pool
        answer, describe = pool.answer, pool.describe

        async def health():
            return await pool.health()

    @app.exception_handler(MnistlabError)
    async def user_error(request, error):
        return _response(error_reply(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return JSONResponse({"error": str(error.detail), "field": None}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        first = error.errors()[0] if error.errors() else {}
        field = str(first["loc"][-1]) if first.get("loc") else None
        return JSONResponse(
            {
                "error": f"invalid request: {f'{field}: ' if field else ''}{first.get('msg', 'not as the API describes')}",
                "field": field,
            },
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request, error):  # a bug: still JSON, and the server keeps serving
        return _response(internal_error_reply(error))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text())

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_page():
        return HTMLResponse(API_PAGE)

    @app.get("/healthz")
    async def healthz():
        checked = await health()
        healthy = all(worker["ok"] for worker in checked.get("workers", ()))
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", "models": len(describe()), **checked},
            status_code=200 if healthy else 503,
        )

    @app.get("/api/models")
    def list_models():
        return {"models": describe(), "chosen_by": chosen_by}

    @app.post("/api/predict", openapi_extra=IMAGE_REQUEST)
    async def predict_endpoint(request: Request):
        body = await refused_at_a_glance(await read_limited(request))
        return _response(await answer("predict", None, body, _content_type(request)))

    @app.post("/api/explain", openapi_extra=IMAGE_REQUEST)
    async def explain_endpoint(request: Request):
        # Who asks: the page's own id for itself (X-Client-Id), else its connection.
        connection = f"{request.client.host}:{request.client.port}" if request.client else "anonymous"
        client = request.headers.get("x-client-id") or connection
        body = await refused_at_a_glance(await read_limited(request))
        return _response(await answer("explain", client, body, _content_type(request)))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class HostCheck:
    """ASGI middleware: a request whose Host header names none of ALLOWED gets a 403 and its one-line JSON error.

    Against DNS rebinding: a page from elsewhere whose name is made to resolve
    to this machine's loopback address would otherwise read this server's
    answers as its own. Its requests still name that page's host.
    """

    def __init__(self, app, allowed):
        self.app = app
        self.allowed = tuple(name.lower() for name in allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
            if hostname(host).lower() not in self.allowed:
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                named = " or ".join(f"[{name}]" if ":" in name else name for name in self.allowed)
                return await JSONResponse(
                    {
                        "error": f"this server answers to {named}, the names of the address it listens on, not {host[:100]!r}; open it by one of those",
                        "field": None,
                    },
                    status_code=403,
                )(scope, receive, send)
        return await self.app(scope, receive, send)


async def refused_at_a_glance(body):
    """BODY, or the 413 of an upload whose header says it is too large, in the front, before any worker sees it."""
    try:
        preprocess.refuse_at_a_glance(body)
    except MnistlabError:
        await asyncio.sleep(REFUSAL_PAUSE_SECONDS)
        raise
    return body


def hostname(host):
    """The name in a Host header: without its port, an IPv6 address without its brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts_for(host):
    """The Host names the server answers to when it listens on HOST.

    On a loopback address, its loopback names alone: DNS rebinding points a
    foreign name at 127.0.0.1. On any other address, every name: the server
    is then meant to be reached from other machines, by whatever names and
    proxies lead to it, and what it answers anyone there is what a page that
    rebinds a name to it could read (predictions, the models' settings).
    """
    import ipaddress

    try:
        loopback = host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        loopback = False
    return tuple(dict.fromkeys((*LOOPBACK_NAMES, host.lower()))) if loopback else None


def _closing(pool):
    """The app's lifespan: on shutdown (after uvicorn has answered the requests in flight) the workers stop."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if pool is not None:
            await run_in_threadpool(pool.close)

    return lifespan


def _content_type(request):
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _response(reply):
    return Response(
        reply.body,
        status_code=reply.status,
        media_type="application/json",
        headers={"Retry-After": str(reply.retry_after)} if reply.retry_after else None,
    )


async def read_limited(request):
    """The request body, at most MAX_UPLOAD_BYTES; a larger one gets the 413 JSON.

    The body is read (and dropped) up to DRAIN_LIMIT before answering 413:
    clients that send the whole body before reading the answer (Python's
    urllib and http.client, requests) would otherwise see the connection
    reset instead of the error. Past DRAIN_LIMIT the server stops reading.
    """
    declared = request.headers.get("content-length")
    too_large = f"over the {MAX_UPLOAD_BYTES // 1024 // 1024} MB limit"
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        if int(declared) <= DRAIN_LIMIT:
            async for _ in request.stream():
                pass
        raise RequestError(f"upload of {int(declared):,} bytes is {too_large}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            break
        if size <= MAX_UPLOAD_BYTES:
            chunks.append(chunk)
    if size > MAX_UPLOAD_BYTES:
        raise RequestError(f"upload is {too_large}", 413)
    body = b"".join(chunks)
    if not body:
        raise RequestError('empty request body: send image bytes or JSON {"pixels": 28x28 numbers}')
    return body


def run(
    run_dirs=None, host="127.0.0.1", port=8000, runtime="keras", store_path=None, log=print, dataset=None, workers=None
):
    """Load the models and serve until interrupted (Ctrl+C or SIGTERM: requests in flight are answered first).

    With no runs named: per family, the best validation run on the page's
    dataset (`dataset`: digits by default, i.e. mnist or mnist-mini; or
    fashion-mnist, or any dataset name). Named runs must share one kind of image.
    `workers`: model worker processes (see mnistlab.serving.workers); 0 keeps the
    models in this process; None takes DEFAULT_WORKERS.
    """
    import uvicorn

    from mnistlab.analysis import pages
    from mnistlab.ml import predict
    from mnistlab.serving import workers as workers_lib

    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ConfigError(f"--workers must be 0 (the models in the server's process) or more, got {workers}")
    listening = bind(host, port)  # before any model is loaded: a busy port is one line, at once
    chosen = not run_dirs
    if chosen:
        picks = pages.choose_runs(store_path, dataset or pages.DEFAULT_PAGE)
        for pick in picks:
            log(f"chose {pick['run_dir']} for the {pick['family']}: {pick['why']}")
        run_dirs = [pick["run_dir"] for pick in picks]
    else:
        run_dirs = list(run_dirs)
        page = pages.check_one_page(run_dirs)
        if dataset and page != dataset and dataset not in pages.page_datasets(page):
            raise ConfigError(
                f"--dataset {dataset} does not match the runs given (trained on {page}); drop --dataset or pass runs of {dataset}"
            )
    chosen_by = "best validation accuracy in the run store" if chosen else None
    pool = None
    if workers == 0:
        # One line per model as it loads and warms (compiles on its first call), so a
        # start of several seconds shows what it is doing.
        predict.activate_for(run_dirs, runtime)
        predictors = load_predictors(run_dirs, runtime, log=log)
        started = time.perf_counter()
        app = create_app(predictors, chosen_by=chosen_by, allowed_hosts=allowed_hosts_for(host))
        log(
            f"models compiled for batches of {', '.join(map(str, batching.BUCKETS))} in {time.perf_counter() - started:.1f} s"
        )
        app.state.engine.warm_inside_views(log=log)
    else:
        threads = workers_lib.threads_per_worker(workers)
        pool = workers_lib.WorkerPool(run_dirs, runtime=runtime, workers=workers, log=log)
        explaining = " and an explain worker at a lower priority" if pool.has_explain_worker else ""
        log(
            f"starting {workers} model worker process{'es' if workers > 1 else ''}{explaining} ({threads} thread{'s' if threads > 1 else ''} each, {workers_lib.cores()} cores)"
        )
        pool.start()
        app = create_app(chosen_by=chosen_by, pool=pool, allowed_hosts=allowed_hosts_for(host))
    if host not in LOOPBACK_NAMES:
        log(f"warning: listening on {host}, reachable from other machines (and answering any host name)")
    log(f"open http://{host}:{port}/ to draw a digit (Ctrl+C stops)")
    try:
        # On Ctrl+C or SIGTERM uvicorn stops listening, answers the requests in flight, runs the
        # app's shutdown (the workers stop), then ends the process by that signal, as it came.
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])
    finally:
        listening.close()
        if pool is not None:
            pool.close()  # when uvicorn failed to start (a port in use): the workers stop too


def default_workers():
    """Model worker processes by default: DEFAULT_WORKERS, at most one per core."""
    from mnistlab.serving.workers import cores

    return max(1, min(DEFAULT_WORKERS, cores()))


def bind(host, port):
    """A socket listening on HOST:PORT, or a one-line ConfigError: bound before any model or store is
    loaded, so that a busy port is said at once, not after a minute of loading."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another mnistlab serve or lab?); stop it or choose another with --port",
                field="port",
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {error.strerror}; check --host and --port", field="port"
        ) from None
    listening.listen(2048)
    return listening
