"""What both apps serve besides their API: their page, the static files the pages load, and the API page.

The pages are written from web/templates/ (`templating`): index.html (the draw page) and lab.html (the lab);
their code and styles are the files of web/static/, served by both apps at static/ (the lab's draw pages through
serve's app). The API page
(/docs) is written from the app's own OpenAPI schema, on the server, so that it needs nothing from
elsewhere (FastAPI's Swagger UI loads from a CDN, blank offline): the API is described once, by its routes.
"""

import html
import pathlib

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mnistlab.web import templating

WEB = pathlib.Path(__file__).parent
STATIC = WEB / "static"
METHODS = ("get", "post", "put", "delete", "patch")


def add_site(app: FastAPI, page: str):
    """GET / (PAGE, a template of web/templates/), GET /docs (the API page) and /static/ (web/static/) on APP."""
    page_html = templating.page_html(page)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_route():
        return HTMLResponse(page_html)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_page_route(request: Request):
        return HTMLResponse(api_page(app.openapi(), request.scope.get("root_path", "") + app.openapi_url))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def api_page(schema, schema_url):
    """The API page of an OpenAPI SCHEMA (served at SCHEMA_URL): each operation, its parameters and body."""
    info = schema["info"]
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(info['title'])} API</title>",
        "<style>body { font-family: system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em }"
        " code { background: #f3f3f3; padding: 0 .2em } li { margin: .2em 0 }</style></head><body>",
        f"<h1>{html.escape(info['title'])} API</h1><p>{html.escape(info.get('description', ''))}</p>",
        f'<p>The schema: <a href="{html.escape(schema_url)}">{html.escape(schema_url)}</a> (OpenAPI 3), for any'
        " OpenAPI viewer; this page is written from it, with nothing fetched from elsewhere.</p>",
    ]
    for path, operations in schema.get("paths", {}).items():
        for method in METHODS:
            if method in operations:
                parts.append(_operation(method, path, operations[method]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(method, path, operation):
    """One operation of the API page: its method and path, summary, description, parameters and body types."""
    lines = [f"<h2><code>{method.upper()} {html.escape(path)}</code> {html.escape(operation.get('summary', ''))}</h2>"]
    if operation.get("description"):
        lines.append(f"<p>{html.escape(operation['description'])}</p>")
    parameters = [
        f"<li><code>{html.escape(parameter['name'])}</code> ({parameter['in']})"
        + (f": {html.escape(parameter['description'])}" if parameter.get("description") else "")
        + "</li>"
        for parameter in operation.get("parameters", [])
    ]
    if parameters:
        lines.append("<ul>" + "".join(parameters) + "</ul>")
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        lines.append("<p>Body: " + ", ".join(f"<code>{html.escape(kind)}</code>" for kind in body) + "</p>")
    return "\n".join(lines)
