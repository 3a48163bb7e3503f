"""/api/runs: launch, list, one run, cancel, resume, and the runs' live progress (Server-Sent Events)."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from mnistlab.core.events import EventKind
from mnistlab.web.bodies import json_body, read_body
from mnistlab.web.errors import ERROR_RESPONSES
from mnistlab.web.lab.form import launch_schema, schema
from mnistlab.web.lab.hub import LIVE, finished
from mnistlab.web.lab.launch import MAX_LAUNCH_BYTES
from mnistlab.web.lab.routing import LabOf, RunId, event_stream, json_answer
from mnistlab.web.lab.views import RunsQuery

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/api/schema", summary="the launch form")
def get_schema(lab: LabOf):
    """Presets, each family's knobs (from their one declaration), the run settings."""
    return schema(lab.datasets.names())


@router.post(
    "/api/runs",
    status_code=202,
    summary="launch: one queued run per seed",
    openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": launch_schema()}}}},
)
async def launch(request: Request, lab: LabOf):
    """Each seed's run: {"runs": [{"run_id", "status"}]}, status `queued`, or that of the run the same setup and
    seed already has. Checked as the CLI checks its options; a bad value queues nothing."""
    body = json_body(await read_body(request, MAX_LAUNCH_BYTES, "a launch"))
    return {"runs": await asyncio.to_thread(lab.launch, body)}


@router.get("/api/runs", summary="the runs, folded by setup")
def list_runs(lab: LabOf, query: Annotated[RunsQuery, Depends()]):
    """Runs that differ only by seed in one row: n, mean and 95% interval of the test accuracy, the book's figure."""
    return json_answer(lab.list_runs(query))


@router.get("/api/runs/{run_id}", summary="one run")
def get_run(run_id: RunId, lab: LabOf):
    """Settings and what differs from the preset, status, metrics, history, live progress, its setup's other runs."""
    return lab.views.run_detail(run_id)


@router.get("/api/runs/{run_id}/dynamics", summary="the run's weights, gradients and units over training")
def get_dynamics(run_id: RunId, lab: LabOf):
    """Each weight's norm, update over norm and gradient norm, each layer's output (mean, std, never-firing or
    saturated share) and their histograms, at epoch 0 and after each epoch so far; 404 for a run without them."""
    return lab.views.run_dynamics(run_id)


@router.delete("/api/runs/{run_id}", status_code=202, summary="cancel a queued or running run")
def cancel(run_id: RunId, lab: LabOf):
    return lab.queue.cancel(run_id)


@router.post("/api/runs/{run_id}/resume", status_code=202, summary="queue an interrupted or failed run again")
def resume(run_id: RunId, lab: LabOf):
    """The same setup and seed, as a new attempt of its key."""
    return lab.queue.resume(run_id)


@router.get("/api/runs/{run_id}/events", summary="the run's progress, as it trains (Server-Sent Events)")
async def run_events(run_id: RunId, lab: LabOf):
    """One JSON object per event (`kind`: snapshot, status, step, epoch, end); the stream ends with the run."""
    # The sequence first, then the store: an event published while the store is read is
    # then still followed (the page may see a status twice, never miss the last one).
    after = lab.hub.sequence
    detail = await asyncio.to_thread(lab.views.run_detail, run_id)  # an unknown run: a 404, before the stream

    async def events():
        yield {
            "kind": EventKind.SNAPSHOT.value,
            "status": detail["status"],
            "history": detail["history"],
            "progress": detail["progress"],
            "seq": after,
        }
        if detail["status"] not in LIVE:
            yield {"kind": EventKind.END.value, "status": detail["status"], "seq": after}
            return
        async for event in lab.hub.follow(run_id, after=after):
            yield event
            if event is not None and finished(event):
                yield {"kind": EventKind.END.value, "status": event["status"], "seq": event["seq"]}
                return

    return event_stream(events())


@router.get("/api/events", summary="every run's progress (Server-Sent Events)")
async def all_events(lab: LabOf, after: int = 0):
    """The events numbered after AFTER, then each as it comes (the runs view's live progress)."""
    return event_stream(lab.hub.follow(None, after=after))
