"""What the lab's routers share: the `Lab` a route serves, a run id in a path, JSON and event-stream answers."""

import typing

from fastapi import Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from mnistlab.core import fileio
from mnistlab.web.lab.service import Lab

MAX_RUN_ID = 2**63 - 1  # SQLite's integers: a larger id is no run (and not an OverflowError)


def the_lab(request: Request) -> Lab:
    """The `Lab` of the app the request came to (`create_app` sets it)."""
    return request.app.state.lab


LabOf = typing.Annotated[Lab, Depends(the_lab)]
# A run id in a path: a positive SQLite integer (a larger one is a 422, not an OverflowError).
RunId = typing.Annotated[int, Path(ge=1, le=MAX_RUN_ID, description="a run's id (mnistlab runs list)")]


def json_answer(value):
    """VALUE as JSON, serialised here: FastAPI's own encoder walks every value in Python, several times
    json.dumps' cost for 1,000 runs (or every epoch's band of every setup compared)."""
    return Response(fileio.dumps(value, separators=(",", ":")), media_type="application/json")


def event_stream(events):
    """Server-Sent Events from an async iterator of events (None: a heartbeat comment)."""

    async def stream():
        async for event in events:
            if event is None:
                yield ": keepalive\n\n"
                continue
            yield f"id: {event.get('seq', 0)}\ndata: {fileio.dumps(event)}\n\n"

    # No buffering on the way (nginx honours X-Accel-Buffering): a point is on screen as it comes.
    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
