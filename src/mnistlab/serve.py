"""The draw-a-digit web page and its JSON API (FastAPI).

    GET  /             the page: draw with mouse, pen or touch, or drop an image
    POST /api/predict  image bytes, or JSON {"pixels": 28x28 numbers in [0, 1]}
    POST /api/explain  the same input; each model's inside (layer views, attributions, the RNN's reading)
    GET  /api/models   the loaded models
    GET  /healthz      liveness
    GET  /openapi.json, /docs   the schema

Every bad request gets a 4xx with {"error": "..."}; the page and the CLI use
the same preprocessing (`mnistlab.preprocess.to_mnist`).
"""

import contextlib
import pathlib
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab import batching
from mnistlab.engine import Engine, error_reply, internal_error_reply, load_predictors
from mnistlab.errors import ConfigError, MnistlabError, RequestError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop up to this much of an oversized body, then answer 413
# Measured by benchmarks/serve_load.py (BENCHMARKS.md): the workers that served the most.
DEFAULT_WORKERS = 2
PAGE = pathlib.Path(__file__).parent / "web" / "index.html"


API_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mnistlab API</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto">
<h1>mnistlab API</h1>
<p>The schema is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3): load it into any OpenAPI viewer.
This page is served from here, with nothing fetched from elsewhere, so it works offline.</p>
<ul>
<li><code>POST /api/predict</code>: image bytes (PNG, JPEG, BMP, GIF, TIFF, WebP, .npy) or JSON <code>{"pixels": 28x28 numbers}</code>;
the answer has the 28x28 input and each model's probabilities. Bad input gets a 4xx with <code>{"error": "..."}</code>.</li>
<li><code>POST /api/explain</code>: the same input and errors; per model the inside: each layer's activations or feature maps,
the first layer's templates or kernels, the RNN's belief after each row, and attribution maps for the predicted class and the runner-up.
Large arrays come as <code>{"shape", "min", "max", "uint8"}</code>: base64 bytes scaled from min to max.</li>
<li><code>GET /api/models</code>: the models served, with their settings and test accuracy.</li>
<li><code>GET /healthz</code>: liveness.</li>
</ul></body></html>"""


# Both endpoints take the same input: image bytes or JSON pixels.
IMAGE_REQUEST = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "properties": {"pixels": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}, "required": ["pixels"]}},
        },
    }
}


def create_app(predictors=None, chosen_by=None, warm=True, pool=None):
    """The app serving `predictors` (a list of mnistlab.predict.Predictor) in this process, or a `pool`.

    `chosen_by`: how the runs were picked, shown on the page (e.g. "best validation accuracy in the store").
    `warm`: compile every model for every batch size now (seconds), not in front of the first visitors.
    `pool`: a started `mnistlab.workers.WorkerPool`, whose processes hold the models instead.
    """
    # The interactive /docs of FastAPI loads Swagger UI from a CDN, blank offline: a local page instead.
    app = FastAPI(title="mnistlab", version="1", description="Draw a digit; see what the MLP, CNN and RNN make of it.", docs_url=None, redoc_url=None, lifespan=_closing(pool))
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
            return {**pool.status(), "counts": await pool.counts()}

    @app.exception_handler(MnistlabError)
    async def user_error(request, error):
        return _response(error_reply(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return JSONResponse({"error": f"invalid request: {error.errors()[:1]}"}, status_code=422)

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
        return {"status": "ok", "models": len(describe()), **(await health())}

    @app.get("/api/models")
    def list_models():
        return {"models": describe(), "chosen_by": chosen_by}

    @app.post("/api/predict", openapi_extra=IMAGE_REQUEST)
    async def predict_endpoint(request: Request):
        body = await read_limited(request)
        return _response(await answer("predict", None, body, _content_type(request)))

    @app.post("/api/explain", openapi_extra=IMAGE_REQUEST)
    async def explain_endpoint(request: Request):
        # Who asks: the page's own id for itself (X-Client-Id), else its connection.
        connection = f"{request.client.host}:{request.client.port}" if request.client else "anonymous"
        client = request.headers.get("x-client-id") or connection
        body = await read_limited(request)
        return _response(await answer("explain", client, body, _content_type(request)))

    return app


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
    return Response(reply.body, status_code=reply.status, media_type="application/json", headers={"Retry-After": str(reply.retry_after)} if reply.retry_after else None)


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
        raise RequestError("empty request body: send image bytes or JSON {\"pixels\": 28x28 numbers}")
    return body


def run(run_dirs=None, host="127.0.0.1", port=8000, runtime="keras", store_path=None, log=print, dataset=None, workers=None):
    """Load the models and serve until interrupted (Ctrl+C or SIGTERM: requests in flight are answered first).

    With no runs named: per family, the best validation run on the page's
    dataset (`dataset`: digits by default, i.e. mnist or mnist-mini; or
    fashion-mnist, or any dataset name). Named runs must share one kind of image.
    `workers`: model worker processes (see mnistlab.workers); 0 keeps the
    models in this process; None takes DEFAULT_WORKERS.
    """
    import uvicorn

    from mnistlab import predict, workers as workers_lib

    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ConfigError(f"--workers must be 0 (the models in the server's process) or more, got {workers}")
    chosen = not run_dirs
    if chosen:
        picks = predict.choose_runs(store_path, dataset or predict.DEFAULT_PAGE)
        for pick in picks:
            log(f"chose {pick['run_dir']} for the {pick['family']}: {pick['why']}")
        run_dirs = [pick["run_dir"] for pick in picks]
    else:
        run_dirs = list(run_dirs)
        page = predict.check_one_page(run_dirs)
        if dataset and page != dataset and dataset not in predict.page_datasets(page):
            raise ConfigError(f"--dataset {dataset} does not match the runs given (trained on {page}); drop --dataset or pass runs of {dataset}")
    chosen_by = "best validation accuracy in the run store" if chosen else None
    pool = None
    if workers == 0:
        # One line per model as it loads and warms (compiles on its first call), so a
        # start of several seconds shows what it is doing.
        predict.activate_for(run_dirs, runtime)
        predictors = load_predictors(run_dirs, runtime, log=log)
        started = time.perf_counter()
        app = create_app(predictors, chosen_by=chosen_by)
        log(f"models compiled for batches of {', '.join(map(str, batching.BUCKETS))} in {time.perf_counter() - started:.1f} s")
        app.state.engine.warm_inside_views(log=log)
    else:
        threads = workers_lib.threads_per_worker(workers)
        pool = workers_lib.WorkerPool(run_dirs, runtime=runtime, workers=workers, log=log)
        explaining = " and an explain worker at a lower priority" if pool.has_explain_worker else ""
        log(f"starting {workers} model worker process{'es' if workers > 1 else ''}{explaining} ({threads} thread{'s' if threads > 1 else ''} each, {workers_lib.cores()} cores)")
        pool.start()
        app = create_app(chosen_by=chosen_by, pool=pool)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: listening on {host}, reachable from other machines")
    log(f"open http://{host}:{port}/ to draw a digit (Ctrl+C stops)")
    try:
        # On Ctrl+C or SIGTERM uvicorn stops listening, answers the requests in flight, runs the
        # app's shutdown (the workers stop), then ends the process by that signal, as it came.
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if pool is not None:
            pool.close()  # when uvicorn failed to start (a port in use): the workers stop too


def default_workers():
    """Model worker processes by default: DEFAULT_WORKERS, at most one per core."""
    from mnistlab.workers import cores

    return max(1, min(DEFAULT_WORKERS, cores()))
