"""Schemathesis over every operation of both apps' OpenAPI schemas: the draw page's server (serve) and the lab (with
its token). Whatever a client sends, within or outside the schema, the answer is no 5xx and matches the schema
(the one error shape, {"error", "field"}, for every 4xx).

A small fixed number of examples per operation in the quick loop; more in the slow tests.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from mnistlab.web import lab as lab_lib

TOKEN = "the-schemathesis-token-0123456789"
LOOPBACK = "http://127.0.0.1:8100"
AUTHORIZED = {"Authorization": f"token {TOKEN}", "Host": "127.0.0.1:8100"}
CHECKS = [not_a_server_error, response_schema_conformance]
# A stream that never ends by design (every run's events, as the runs view follows them): a fuzzer's call waits on it
# until its own time-out. Its one parameter (`after`, an integer) is checked by tests/test_lab.py.
ENDLESS = ("GET /api/events",)
QUICK_EXAMPLES = 8
THOROUGH_EXAMPLES = 60


def fuzz(schema, examples, headers=None):
    """Every operation of SCHEMA, EXAMPLES generated cases each (Hypothesis), each answered without a 5xx and as
    the schema says. Hypothesis shrinks a failure to its smallest case and reports it."""
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [
        operation for operation in operations if f"{operation.method.upper()} {operation.path}" not in ENDLESS
    ]
    assert operations
    for operation in operations:

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def answered_as_described(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        answered_as_described()
    return [f"{operation.method.upper()} {operation.path}" for operation in operations]


def lab_schema(tmp_path):
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0)  # queues and shows, trains nothing
    app = lab_lib.create_app(lab, token=TOKEN, loopback_only=True)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTHORIZED)


def test_the_lab_answers_anything_without_a_server_error(tmp_path):
    operations = fuzz(lab_schema(tmp_path), QUICK_EXAMPLES, headers=AUTHORIZED)
    assert "POST /api/runs" in operations and "GET /api/runs/{run_id}" in operations


def test_serve_answers_anything_without_a_server_error(app):
    operations = fuzz(schemathesis.openapi.from_asgi("/openapi.json", app), QUICK_EXAMPLES)
    assert "POST /api/predict" in operations


@pytest.mark.slow
def test_the_lab_holds_under_many_more_examples(tmp_path):
    fuzz(lab_schema(tmp_path), THOROUGH_EXAMPLES, headers=AUTHORIZED)


@pytest.mark.slow
def test_serve_holds_under_many_more_examples(app):
    fuzz(schemathesis.openapi.from_asgi("/openapi.json", app), THOROUGH_EXAMPLES)
