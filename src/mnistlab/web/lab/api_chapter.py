"""/api/compare and /api/tables: seeds as the unit, the numbers of `mnistlab runs compare` and `report TABLE`."""

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from mnistlab.analysis import tables
from mnistlab.web.errors import ERROR_RESPONSES
from mnistlab.web.lab.routing import LabOf, json_answer

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/api/compare", summary="setups side by side over their seeds")
def compare(
    lab: LabOf,
    setup: list[str] = Query(
        default=[], description="a setup: a preset, a config hash or group=NAME; two or more to compare"
    ),
    by: Literal["backend"] | None = None,
    backend: str | None = None,
    dataset: str | None = None,
):
    """Per epoch the mean and 95% band, the final test accuracy with its interval, parameters, the book's figure,
    and Welch's test for each pair."""
    return json_answer(lab.views.compare(setup, by=by, backend=backend, dataset=dataset))


@router.get("/api/tables", summary="the chapter's tables, and which the store has a reproduction of")
def list_tables(lab: LabOf):
    return lab.views.tables()


@router.get("/api/tables/{table}", summary="a reproduced table, as `mnistlab report TABLE --format F` writes it")
def get_table(table: str, lab: LabOf, format: Literal[tables.FORMATS] = "json"):
    text, filename = lab.views.table(table, format)
    return Response(
        text.encode("utf-8"),
        media_type=tables.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
