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

import json
import pathlib
import threading
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab import batching, data, explain, preprocess
from mnistlab.errors import ConfigError, MnistlabError, RequestError
from mnistlab.predict import top_k

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop up to this much of an oversized body, then answer 413
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


def create_app(predictors, chosen_by=None, warm=True):
    """The app serving `predictors` (a list of mnistlab.predict.Predictor).

    `chosen_by`: how the runs were picked, shown on the page (e.g. "best validation accuracy in the store").
    `warm`: compile every model for every batch size now (seconds), not in front of the first visitors.
    """
    # The interactive /docs of FastAPI loads Swagger UI from a CDN, blank offline: a local page instead.
    app = FastAPI(title="mnistlab", version="1", description="Draw a digit; see what the MLP, CNN and RNN make of it.", docs_url=None, redoc_url=None)
    models = {predictor.describe()["id"]: predictor for predictor in predictors}

    @app.exception_handler(MnistlabError)
    async def user_error(request, error):
        retry = getattr(error, "retry_after_seconds", None)
        return JSONResponse({"error": str(error)}, status_code=error.http_status, headers={"Retry-After": str(retry)} if retry else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return JSONResponse({"error": f"invalid request: {error.errors()[:1]}"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request, error):  # a bug: still JSON, and the server keeps serving
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text())

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_page():
        return HTMLResponse(API_PAGE)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "models": len(models)}

    @app.get("/api/models")
    def list_models():
        return {"models": [predictor.describe() for predictor in models.values()], "chosen_by": chosen_by}

    @app.post("/api/predict", openapi_extra=IMAGE_REQUEST)
    async def predict_endpoint(request: Request):
        return await _respond(request, _predictions)

    @app.post("/api/explain", openapi_extra=IMAGE_REQUEST)
    async def explain_endpoint(request: Request):
        # Who asks: the page's own id for itself (X-Client-Id), else its connection.
        connection = f"{request.client.host}:{request.client.port}" if request.client else "anonymous"
        client = request.headers.get("x-client-id") or connection
        return await _respond(request, lambda image28: explanations.explain(client, image28))

    async def _respond(request, answer):
        body = await _read_limited(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # One trip to a worker thread per request: decoding, preprocessing and the three
        # models together (a hop per model cost more than the models themselves).
        # Serialised here, in the worker: FastAPI's own encoder walks every one of
        # the 784 input values in Python, which cost more than the three models.
        return Response(await run_in_threadpool(_answer, answer, body, content_type), media_type="application/json")

    def _answer(answer, body, content_type):
        image28, info = _decode(body, content_type)
        return json.dumps({"input": np.round(image28, 4).tolist(), "preprocess": info, **answer(image28)}, separators=(",", ":")).encode()

    batcher = batching.Batcher(models.values())
    if warm:
        batcher.warm()
    app.state.batcher = batcher  # tests read how it batched

    def _predictions(image28):
        results = []
        for (model_id, predictor), probabilities in zip(models.items(), batcher.predict(image28)):
            names = data.class_names(predictor.config.dataset)
            results.append({"model": model_id, "family": predictor.family, "preset": predictor.preset, "prediction": int(probabilities.argmax()), "probabilities": [round(float(p), 6) for p in probabilities], "labels": list(names), "top": top_k(probabilities, 3, names)})
        return {"predictions": results}

    explainers, building = {}, threading.Lock()

    def _explainer(model_id):
        """Each model's Explainer, built on first use (most requests only predict)."""
        with building:
            if model_id not in explainers:
                explainers[model_id] = explain.for_predictor(models[model_id])
            return explainers[model_id]

    def _explanations(image28):
        return {"explanations": [{"model": model_id, "preset": predictor.preset, **explain.to_json(_explainer(model_id).explain(image28), compact=True)} for model_id, predictor in models.items()]}

    explanations = batching.ExplainQueue(_explanations, busy=batcher.busy)
    app.state.explainer = _explainer  # `run` warms each one up before the first visitor
    app.state.explanations = explanations

    return app


async def _read_limited(request):
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


def _decode(body, content_type):
    """Request body -> (28x28 image, preprocessing info); a bad one raises an error carrying its HTTP status."""
    if content_type == "application/json" or body[:1] in (b"{", b"["):
        return decode_json(body)
    return preprocess.prepare_file(body, name="upload")


def decode_json(body):
    """A JSON body {"pixels": 28x28} -> (28x28 image in [0, 1], preprocessing info); the lab's inside view takes it too."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError(f"malformed JSON ({error})") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError('JSON body must be an object {"pixels": [[...28 numbers...] x 28]}')
    try:
        pixels = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError("pixels must be a 28x28 array of numbers") from None
    if pixels.shape != (28, 28):
        raise RequestError(f"pixels must be 28x28, got shape {list(pixels.shape)}")
    if not np.all(np.isfinite(pixels)):
        raise RequestError("pixels must be finite numbers")
    if pixels.max() > 1.0:
        pixels = pixels / 255.0  # 0-255 values are accepted too
    pixels = np.clip(pixels, 0, 1)
    if pixels.max() < 0.1:
        raise RequestError("the 28x28 image is empty: draw a digit first", 422)
    # A ready 28x28 array is taken as the model input, as is (already MNIST-style).
    return pixels.astype(np.float32), {"inverted": False, "source_shape": [28, 28], "preprocessed": False}


def run(run_dirs=None, host="127.0.0.1", port=8000, runtime="keras", store_path=None, log=print, dataset=None):
    """Load the models and serve until interrupted.

    With no runs named: per family, the best validation run on the page's
    dataset (`dataset`: digits by default, i.e. mnist or mnist-mini; or
    fashion-mnist, or any dataset name). Named runs must share one kind of image.
    """
    import uvicorn

    from mnistlab import predict

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
    predict.activate_for(run_dirs, runtime)
    # One line per model as it loads and warms (compiles on its first call), so a
    # start of several seconds shows what it is doing.
    warm_digit = np.zeros((28, 28), dtype=np.float32)
    warm_digit[6:22, 12:16] = 1.0
    predictors = []
    for run_dir in run_dirs:
        started = time.perf_counter()
        predictor = predict.Predictor(run_dir, runtime=runtime)
        predictor.predict(warm_digit[None])
        predictors.append(predictor)
        described = predictor.describe()
        accuracy = "" if described["test_accuracy"] is None else f", test accuracy {100 * described['test_accuracy']:.1f}% on {described['dataset']}"
        log(f"loaded {described['family']} from {described['run_dir']} ({runtime}{accuracy}) in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    app = create_app(predictors, chosen_by="best validation accuracy in the run store" if chosen else None)
    log(f"models compiled for batches of {', '.join(map(str, batching.BUCKETS))} in {time.perf_counter() - started:.1f} s")
    if runtime == "keras":  # the inside view's probe and gradients compile on first use too
        for predictor in predictors:
            started = time.perf_counter()
            app.state.explainer(predictor.describe()["id"]).explain(warm_digit)
            log(f"inside view of the {predictor.describe()['family']} ready in {time.perf_counter() - started:.1f} s")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: listening on {host}, reachable from other machines")
    log(f"open http://{host}:{port}/ to draw a digit (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")

