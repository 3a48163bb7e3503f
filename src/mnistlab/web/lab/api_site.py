"""/api/site: ticked runs as a shared site, a zip of the folder `mnistlab site` writes (docs/site.md)."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mnistlab.web.bodies import json_body, read_body
from mnistlab.web.errors import ERROR_RESPONSES
from mnistlab.web.lab.routing import LabOf

router = APIRouter(responses=ERROR_RESPONSES)
MAX_SITE_BYTES = 4 * 1024  # six run ids need a hundred bytes


@router.post(
    "/api/site",
    summary="a static web page of finished runs, as a zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the site's folder, zipped"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["runs"],
                        "properties": {
                            "runs": {
                                "type": "array",
                                "items": {"type": "integer", "minimum": 1},
                                "minItems": 1,
                                "maxItems": 6,
                                "uniqueItems": True,
                                "description": "finished runs' ids, one card each",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def site_zip(request: Request, lab: LabOf):
    """The draw page and inside view of the runs, computed in the browser: unzip and publish on any static host."""
    body = json_body(await read_body(request, MAX_SITE_BYTES, "a site request"))
    payload = await asyncio.to_thread(lab.sites.zip_of, body)
    return Response(
        payload,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="mnistlab-site.zip"'},
    )
