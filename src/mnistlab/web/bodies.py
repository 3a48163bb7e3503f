"""Request bodies, for both apps: read within a bound (413 past it), and JSON read without surprises (400)."""

import json

from mnistlab.core.errors import RequestError

DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop up to this much of an oversized body, then answer 413


def _size(limit):
    return f"{limit // 1024 // 1024} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


async def read_body(request, limit, what="an upload"):
    """The request's body, at most LIMIT bytes; a larger one is a 413 saying so.

    An oversized body is read (and dropped) up to DRAIN_LIMIT before the answer: clients that send the
    whole body before reading the answer (Python's urllib and http.client, requests) would otherwise see
    the connection reset instead of the error. Past DRAIN_LIMIT the server stops reading.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        if int(declared) <= DRAIN_LIMIT:
            async for _ in request.stream():
                pass
        raise RequestError(f"{what} of {int(declared):,} bytes is over the {_size(limit)} limit", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise RequestError(f"{what} is over the {_size(limit)} limit", 413)
    return b"".join(chunks)


def json_body(raw):
    """A JSON body as Python values (an empty body is {}), or a 400 saying what is wrong with it."""
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError, and integers past Python's 4,300 digits
        raise RequestError(f"malformed JSON ({str(error)[:120]})") from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply") from None
