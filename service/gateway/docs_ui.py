"""``/docs``: Swagger UI over ``/openapi.json``, every asset served by the gateway itself from
the pinned ``swagger-ui-bundle`` package (no CDN: the gateway often runs where browsers have
no internet, and a page that pulls scripts from elsewhere is a supply-chain risk)."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from aiohttp import web

#: The bundle's files the page needs; nothing else of the package is reachable (its own
#: index.html would load the Petstore example from the internet).
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

# Relative URLs: the page is /docs, so "docs/x" is /docs/x and "openapi.json" is /openapi.json,
# also behind a reverse proxy that mounts the gateway under a prefix.
INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>sovrisk API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/init.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to an online validator.
INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"""
CACHE = "public, max-age=86400"


@cache
def bundle_dir() -> Path | None:
    """The installed Swagger UI files, or None without swagger-ui-bundle (the UI is optional:
    the API and /openapi.json work without it)."""
    try:
        bundle = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    return Path(str(bundle.swagger_ui_path))


async def index(request: web.Request) -> web.StreamResponse:
    if bundle_dir() is None:
        raise web.HTTPNotImplemented(reason="/docs needs the swagger-ui-bundle package")
    return web.Response(text=INDEX_HTML, content_type="text/html")


async def init_js(_: web.Request) -> web.Response:
    return web.Response(
        text=INIT_JS, content_type="application/javascript", headers={"Cache-Control": CACHE}
    )


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    root = bundle_dir()
    if root is None or name not in ASSETS:
        raise web.HTTPNotFound(reason=f"no asset {name!r}")
    return web.FileResponse(
        root / name, headers={"Content-Type": ASSETS[name], "Cache-Control": CACHE}
    )


async def to_index(_: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("../docs")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/docs", index)
    app.router.add_get("/docs/", to_index)
    app.router.add_get("/docs/init.js", init_js)
    app.router.add_get("/docs/{name}", asset)
