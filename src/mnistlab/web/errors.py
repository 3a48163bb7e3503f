"""The one error shape of both apps: a 4xx or 5xx whose body is `{"error": "...", "field": "..."}`.

`error` is one line that names the problem and the fix; `field` is always there: the request field or
config key at fault (the lab's form shows the message beside it), or null when no one field is. Every
error body of both apps is written by `serving.engine.error_reply` (the one function, also used by the
model worker processes of `serve --workers N`), reached from here: `install(app)` answers user errors
(`MnistlabError`), unknown paths and methods, invalid parameters and bugs; `refusal(...)` answers what
the guard and the lab's /draw mount refuse before any route runs. tests/test_error_shape.py holds both
apps to it.
"""

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab.core.errors import MnistlabError, RequestError
from mnistlab.serving.engine import Reply, error_reply, internal_error_reply

# The error body's schema, for the OpenAPI documents: what every 4xx and 5xx of both apps answers.
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "one line: the problem and its fix"},
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "the request field or config key at fault; null when no one field is",
        },
    },
    "required": ["error", "field"],
}
# What every route may answer besides its own: the one error body, for the routes' `responses` (/openapi.json).
ERROR_RESPONSES = {
    "4XX": {"description": "a request refused", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
    "5XX": {"description": "busy (503), or a bug (500)", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
}


def respond(reply: Reply, headers=None) -> Response:
    """A `Reply` (status, JSON bytes, Retry-After) as the HTTP response."""
    merged = dict(headers or {})
    if reply.retry_after:
        merged["Retry-After"] = str(reply.retry_after)
    return Response(reply.body, status_code=reply.status, media_type="application/json", headers=merged or None)


def error_response(error: MnistlabError) -> Response:
    """A user error as its HTTP status and the one error body (with its own headers, e.g. a queue's Retry-After)."""
    return respond(error_reply(error), headers=getattr(error, "headers", None))


def refusal(message, status, field=None, headers=None) -> Response:
    """MESSAGE with STATUS, in the one error body: what is refused before any route runs."""
    error = RequestError(message, status)
    error.field = field
    return respond(error_reply(error), headers=headers)


def shown(value, limit=60):
    """A client's value in an error message, as JSON spells it, cut short: a message never carries a whole request back."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # not a JSON value (bytes, a nesting too deep to write)
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def install(app: FastAPI, log=None):
    """Answer every error of APP in the one shape; LOG (if given) hears of bugs, which still answer JSON."""

    @app.exception_handler(MnistlabError)
    async def user_error(request: Request, error: MnistlabError):
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return refusal(str(error.detail), error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        field = str(first["loc"][-1]) if first.get("loc") else None
        where = f"{field}: " if field else ""
        return refusal(f"invalid request: {where}{first.get('msg', 'not as the API describes')}", 422, field)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):  # a bug: still JSON, and the app keeps serving
        if log is not None:
            log(f"internal error on {request.method} {request.url.path}: {type(error).__name__}: {error}")
        return respond(internal_error_reply(error))
