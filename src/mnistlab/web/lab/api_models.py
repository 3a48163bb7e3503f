"""/api/runs/{id}/report and /explain: a finished run's model on the test set, and its inside view."""

import asyncio

from fastapi import APIRouter, Request

from mnistlab.web import serve
from mnistlab.web.bodies import json_body
from mnistlab.web.errors import ERROR_RESPONSES
from mnistlab.web.lab.routing import LabOf, RunId

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/api/runs/{run_id}/report", summary="confusion matrix and most confident mistakes on the test set")
def run_report(run_id: RunId, lab: LabOf):
    return lab.models.report(run_id)


@router.post("/api/runs/{run_id}/explain", summary="the inside view of the run's model")
async def run_explain(run_id: RunId, request: Request, lab: LabOf):
    """For {"test_index": i}, {"pixels": 28x28}, or a drawing's bytes (Content-Type: image/png), preprocessed as
    the draw page's."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    raw = await serve.read_upload(request)  # as the draw page's uploads are read
    if content_type.startswith("image/"):  # a drawing from the run page, as the draw page sends it
        return await asyncio.to_thread(lab.models.explain, run_id, raw, content_type)
    return await asyncio.to_thread(lab.models.explain, run_id, json_body(raw))
