"""The API's documentation pages (Swagger UI at /docs, ReDoc at /redoc), served with their scripts and styles
from the installed package, never from a CDN: an air-gapped site gets working pages.

The assets come from the fastapi-offline package (MIT; it ships the current Swagger UI 5 and ReDoc 2
builds: Swagger UI 4, as the older swagger-ui-bundle package ships it, cannot render OpenAPI 3.1). Only
its static files are used; the pages are FastAPI's own. Swagger UI's online validator badge (a request to
validator.swagger.io) is turned off.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS, REDOC, OAUTH2_REDIRECT = "/docs", "/redoc", "/docs/oauth2-redirect"
#: Where the scripts, styles and icon are served.
ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Add the documentation pages and their assets to ``app`` (made with ``docs_url=None, redoc_url=None``,
    so that FastAPI's own CDN pages are not there)."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    title = app.title
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
