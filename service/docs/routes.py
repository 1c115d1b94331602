"""GET /openapi.json, GET /docs (Swagger UI) and its assets. They come from
the swagger-ui-bundle package, so the page works with no internet, but for
our own init script; nothing else is served."""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path

import swagger_ui_bundle
from aiohttp import web

from service import keys
from service.docs.openapi import build_spec
from service.docs.operation import Answer, operation
from service.errors import NotFound
from service.jsonio import dumps

routes = web.RouteTableDef()

SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
_SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
ASSETS = {name: SWAGGER_DIR / name for name in (*_SWAGGER_FILES, "favicon-32x32.png")}
ASSETS["init.js"] = Path(__file__).with_name("init.js")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} — API docs</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
# Everything the page needs is ours; nothing inline but Swagger UI's styles.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def setup(app: web.Application) -> None:
    """Add the docs routes, then document every route added so far."""
    app.add_routes(routes)
    app[keys.OPENAPI] = dumps(build_spec(app[keys.SETTINGS], app.router))


@routes.get("/openapi.json", allow_head=False)
@operation(
    tag="docs",
    ok={200: Answer("The OpenAPI document.", {"type": "object"})},
)
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.Response(body=request.app[keys.OPENAPI], content_type="application/json")


@routes.get("/docs", allow_head=False)
@operation(
    tag="docs",
    ok={200: Answer("An HTML page.", {"type": "string"}, content_type="text/html")},
)
async def docs(request: web.Request) -> web.Response:
    """An interactive viewer for this document (works offline)."""
    title = request.app[keys.SETTINGS].app_name.replace("&", "&amp;").replace("<", "&lt;")
    return web.Response(
        text=PAGE.format(title=title),
        content_type="text/html",
        headers={"Content-Security-Policy": CSP},
    )


@routes.get("/docs/{asset}", allow_head=False)
@operation(
    tag="docs",
    parameters=(
        {
            "name": "asset",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(ASSETS)},
        },
    ),
    ok={200: Answer("A script, style sheet or icon.", {"type": "string"}, content_type="*/*")},
    problems=(404,),
    notes={404: "No such asset."},
)
async def docs_asset(request: web.Request) -> web.Response:
    """The viewer's scripts and styles."""
    name = request.match_info["asset"]
    if name not in ASSETS:
        raise NotFound("No such asset.")
    body, content_type = _asset(name)
    return web.Response(
        body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=86400"}
    )


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return ASSETS[name].read_bytes(), content_type
