"""The draw-a-digit page and its JSON API (FastAPI): `mnistlab serve`, and the lab's draw pages (/draw/RUN_ID/).

The page is web/templates/index.html, its code web/static/; the API is described by its routes (/openapi.json, and the
page /docs written from it). The page and the CLI preprocess alike (`mnistlab.ml.preprocess.to_mnist`), within
the server's bounds per request (`mnistlab.ml.image_limits.SERVER`); every error is the one shape of
`mnistlab.web.errors`; a server on a loopback address answers its loopback names only (`mnistlab.web.guard`).
"""

import asyncio
import contextlib
import dataclasses
import time
import typing

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from mnistlab.core import addresses
from mnistlab.core.errors import ConfigError, MnistlabError, RequestError
from mnistlab.ml import image_formats, image_limits
from mnistlab.serving import batching
from mnistlab.serving.engine import Engine, load_predictors
from mnistlab.web import errors, guard, pages, server, templating
from mnistlab.web.bodies import read_body

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Measured by benchmarks/serve_load.py (BENCHMARKS.md): the workers that served the most.
DEFAULT_WORKERS = 2
# A refused upload too large to read is answered after this pause: it costs the server nothing (the event loop
# serves the others meanwhile), and a client that sends such uploads again and again is slowed to its pace.
REFUSAL_PAUSE_SECONDS = 0.05
PAGE = templating.DRAW_PAGE
STATIC = pages.STATIC  # what the draw page and the lab load alike
allowed_hosts_for = guard.allowed_hosts_for

IMAGES_READ = (
    f"image bytes ({image_limits.SERVER.formats_named} up to {image_limits.SERVER.pixels:,} pixels, a JPEG photo up to"
    f" {image_limits.SERVER.jpeg_pixels // 1_000_000} megapixels, or a .npy array; `mnistlab predict FILE` reads larger"
    ' images and GIF, TIFF, BMP too), or JSON {"pixels": 28x28 numbers in [0, 1]}'
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


@dataclasses.dataclass(frozen=True)
class Models:
    """What the routes ask of the models, held in this process (an `Engine`) or in worker processes (a `WorkerPool`)."""

    answer: typing.Callable  # async (kind, client, body, content_type) -> Reply
    describe: typing.Callable  # () -> [model]
    health: typing.Callable  # async () -> {"counts"} or {"workers": [...]}
    chosen_by: str | None


router = APIRouter(responses=errors.ERROR_RESPONSES)


def _models(request: Request) -> Models:
    return request.app.state.models


@router.get("/healthz", summary="each worker's health")
async def healthz(request: Request):
    """503 when a model worker does not answer within a second."""
    models = _models(request)
    checked = await models.health()
    healthy = all(worker["ok"] for worker in checked.get("workers", ()))
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "models": len(models.describe()), **checked},
        status_code=200 if healthy else 503,
    )


@router.get("/api/models", summary="the models served")
def list_models(request: Request):
    """Each model's settings and test accuracy, and how the runs were chosen."""
    models = _models(request)
    return {"models": models.describe(), "chosen_by": models.chosen_by}


@router.post("/api/predict", summary="each model's probabilities", description=IMAGES_READ, openapi_extra=IMAGE_REQUEST)
async def predict(request: Request):
    body = await _upload(request)
    return errors.respond(await _models(request).answer("predict", None, body, _content_type(request)))


@router.post(
    "/api/explain",
    summary="each model's inside: layer views, the RNN's reading, attributions",
    description=IMAGES_READ + '; large arrays come as {"shape", "min", "max", "uint8": base64 bytes from min to max}',
    openapi_extra=IMAGE_REQUEST,
)
async def explain(request: Request):
    # Who asks: the page's own id for itself (X-Client-Id), else its connection.
    connection = f"{request.client.host}:{request.client.port}" if request.client else "anonymous"
    client = request.headers.get("x-client-id") or connection
    body = await _upload(request)
    return errors.respond(await _models(request).answer("explain", client, body, _content_type(request)))


def create_app(predictors=None, chosen_by=None, warm=True, pool=None, allowed_hosts=None, engine=None):
    """The app serving `predictors` (a list of mnistlab.ml.predict.Predictor) in this process, an `engine`, or a `pool`.

    `chosen_by`: how the runs were picked, shown on the page (e.g. "best validation accuracy in the store").
    `warm`: compile every model for every batch size now (seconds), not in front of the first visitors.
    `pool`: a started `mnistlab.serving.workers.WorkerPool`, whose processes hold the models instead.
    `engine`: an `Engine` its maker closes (the lab's draw pages). `allowed_hosts`: the Host names answered
    (`guard.allowed_hosts_for`); None, any (the lab, which mounts this app under /draw/, checks them itself).
    """
    app = FastAPI(
        title="mnistlab",
        version="1",
        description="Draw a digit; see what the MLP, CNN and RNN make of it. Every error is "
        '{"error": "...", "field": ...} (field: the request field at fault, or null).',
        docs_url=None,
        redoc_url=None,
        lifespan=_closing(pool),
    )
    if pool is not None:
        app.state.models = Models(pool.answer, pool.describe, pool.health, chosen_by)
    else:
        engine = engine or Engine(predictors, warm=warm)
        app.state.engine = engine  # the models in this process (serve --workers 0, tests)

        async def answer(kind, client, body, content_type):
            # One trip to a worker thread per request: decoding, preprocessing and the three
            # models together (a hop per model cost more than the models themselves).
            return await run_in_threadpool(engine.answer, kind, client, body, content_type)

        async def health():
            return {"counts": engine.counts()}

        app.state.models = Models(answer, engine.describe, health, chosen_by)
    errors.install(app)
    app.add_middleware(guard.Guard, allowed_hosts=allowed_hosts)
    app.include_router(router)
    pages.add_site(app, PAGE)
    return app


async def read_upload(request):
    """The body of an upload (an image, or JSON pixels): at most MAX_UPLOAD_BYTES, and not empty."""
    body = await read_body(request, MAX_UPLOAD_BYTES, "upload")
    if not body:
        raise RequestError('empty request body: send image bytes or JSON {"pixels": 28x28 numbers}')
    return body


async def _upload(request):
    """An upload's body, unless its header alone refuses it (in the front, before any model worker sees it)."""
    body = await read_upload(request)
    try:
        image_formats.refuse_at_a_glance(body)
    except MnistlabError:
        await asyncio.sleep(REFUSAL_PAUSE_SECONDS)
        raise
    return body


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


def run(
    run_dirs=None,
    host=addresses.DEFAULT_HOST,
    port=addresses.SERVE_PORT,
    runtime="keras",
    store_path=None,
    log=print,
    dataset=None,
    workers=None,
):
    """Load the models and serve until interrupted (Ctrl+C or SIGTERM: requests in flight are answered first).

    With no runs named: per family, the best validation run on the page's dataset (`dataset`: digits by
    default, i.e. mnist or mnist-mini; or fashion-mnist, or any dataset name). Named runs must share one kind
    of image. `workers`: model worker processes (see mnistlab.serving.workers); 0 keeps the models in this
    process; None takes DEFAULT_WORKERS.
    """
    import uvicorn

    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ConfigError(f"--workers must be 0 (the models in the server's process) or more, got {workers}")
    listening = server.bind(host, port)  # before any model is loaded: a busy port is one line, at once
    pool = None
    try:
        run_dirs, chosen_by = _runs(run_dirs, store_path, dataset, log)
        app, pool = _app(run_dirs, runtime, workers, chosen_by, allowed_hosts_for(host), log)
        if not guard.is_loopback(host):
            log(f"warning: listening on {host}, reachable from other machines (and answering any host name)")
        log(f"open http://{server.shown_host(host)}:{port}/ to draw a digit (Ctrl+C stops)")
        # On Ctrl+C or SIGTERM uvicorn stops listening, answers the requests in flight, runs the
        # app's shutdown (the workers stop), then ends the process by that signal, as it came.
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])
    finally:
        listening.close()
        if pool is not None:
            pool.close()  # when uvicorn failed to start (a port in use): the workers stop too


def _runs(run_dirs, store_path, dataset, log):
    """(run directories, how they were chosen): RUN_DIRS as given, or per family the store's best on DATASET."""
    from mnistlab.analysis import pages as page_runs

    if run_dirs:
        run_dirs = list(run_dirs)
        page = page_runs.check_one_page(run_dirs)
        if dataset and page != dataset and dataset not in page_runs.page_datasets(page):
            raise ConfigError(
                f"--dataset {dataset} does not match the runs given (trained on {page}); drop --dataset or pass runs of {dataset}"
            )
        return run_dirs, None
    picks = page_runs.choose_runs(store_path, dataset or page_runs.DEFAULT_PAGE)
    for pick in picks:
        log(f"chose {pick['run_dir']} for the {pick['family']}: {pick['why']}")
    return [pick["run_dir"] for pick in picks], "best validation accuracy in the run store"


def _app(run_dirs, runtime, workers, chosen_by, allowed_hosts, log):
    """(the app, its worker pool or None): the models in this process (WORKERS 0), or in WORKERS processes."""
    from mnistlab.ml import predict
    from mnistlab.serving import worker_process
    from mnistlab.serving import workers as workers_lib

    if workers == 0:
        # One line per model as it loads and warms (compiles on its first call), so a
        # start of several seconds shows what it is doing.
        predict.activate_for(run_dirs, runtime)
        predictors = load_predictors(run_dirs, runtime, log=log)
        started = time.perf_counter()
        engine = Engine(predictors, warm=True)
        log(
            f"models compiled for batches of {', '.join(map(str, batching.BUCKETS))} in {time.perf_counter() - started:.1f} s"
        )
        engine.warm_inside_views(log=log)
        return create_app(engine=engine, chosen_by=chosen_by, allowed_hosts=allowed_hosts), None
    threads = worker_process.threads_per_worker(workers)
    pool = workers_lib.WorkerPool(run_dirs, runtime=runtime, workers=workers, log=log)
    explaining = " and an explain worker at a lower priority" if pool.has_explain_worker else ""
    log(
        f"starting {workers} model worker process{'es' if workers > 1 else ''}{explaining} ({threads} thread{'s' if threads > 1 else ''} each, {worker_process.cores()} cores)"
    )
    pool.start()  # a pool that fails to start closes itself
    return create_app(chosen_by=chosen_by, pool=pool, allowed_hosts=allowed_hosts), pool


def default_workers():
    """Model worker processes by default: DEFAULT_WORKERS, at most one per core."""
    from mnistlab.serving.worker_process import cores

    return max(1, min(DEFAULT_WORKERS, cores()))
